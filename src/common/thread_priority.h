// Background CPU priority: the ingest path (HTTP threads, the buffer's writer) answers clients
// should not queue behind bulk work. With `--background-nice N` (default 0: off), loading,
// exporting, history fetches, SQL queries and DuckDB's worker threads run N nicer, so that on a
// CPU-saturated machine the scheduler runs an ingest thread first when it wakes, and the bulk
// work takes the rest of the CPU (all of it while ingest is idle). Measured (BENCHMARKS.md,
// issue 7): at 24,000 events/s on the embedded store it did not lower the ack p99 during
// window exports, so it is off by default.
//
// Linux keeps a nice value per thread, and a new thread inherits its creator's. Raising it is
// always allowed; lowering it again needs CAP_SYS_NICE, so EnterBackground() is for threads
// that do background work for their whole life, and RunWithBackgroundPriority() runs a call
// that creates long-lived threads (duckdb_open_ext starts DuckDB's workers) on a short-lived
// thread of its own.
//
// Concurrency: SetBackgroundNice() before the threads start (serve does it while parsing its
// flags); the rest is thread-safe.
#pragma once

#include <functional>

#include "common/status.h"

namespace sluice {

// The nice increment for background threads: 0 (off) .. 19. Default 0 (tests, tools); `sluice
// serve` sets its --background-nice.
void SetBackgroundNice(int increment);
int BackgroundNice();

// Raises the calling thread's nice value by BackgroundNice() (nothing when it is 0). A failure
// (not expected on Linux) leaves the priority as it was and is returned for the log.
Status EnterBackground();

// Runs fn on a new thread that EnterBackground()s first, and waits for it: threads fn starts
// inherit the background priority, the caller's stays. Runs fn on the calling thread when
// BackgroundNice() is 0.
void RunWithBackgroundPriority(const std::function<void()>& fn);

}  // namespace sluice
