// The parts of one `sluice bench` run that the HTTP load generator (load_generator.cc) and the
// raw XADD runner (raw_xadd.cc) share, so that both check the same options, generate the same
// events, schedule open-loop sends the same way and count and summarise the same way: the two
// reports are only comparable if these agree. Internal to src/bench.
//
// Concurrency: free functions without shared state; a WorkerStats belongs to one thread until
// that thread is joined.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stop_token>
#include <string>
#include <vector>

#include "bench/event_generator.h"
#include "bench/histogram.h"
#include "bench/load_generator.h"
#include "bench/run_log.h"
#include "common/status.h"

namespace sluice::bench::internal {

using SteadyClock = std::chrono::steady_clock;

SteadyClock::duration Seconds(double s);

// InvalidArgument, with a sentence naming the flag, unless the options both modes share are in
// range (connections, batch, rate, duration, warmup, event size and templates, timeouts).
Status CheckOptions(const BenchOptions& options);

// An id prefix (8 random hex digits) no earlier run is likely to have used, so a server's
// dedup never sees old ids.
std::string FreshIdPrefix();

// The generator a run with these options uses: the same templates (count, sizes, seed) in both
// modes, messageIds "<id_prefix>-<seq>".
EventGeneratorOptions GeneratorOptionsFor(const BenchOptions& options,
                                          const std::string& id_prefix, EventMix mix);

// Open loop: the time between one connection's sends, so that `connections` connections each
// sending `batch` events per send offer `rate` events/s in total, rounded up to the clock's
// tick. Never 0.
SteadyClock::duration OpenLoopInterval(double rate, int connections, int batch);

// Open loop, at the end: how many of a connection's slots next_slot, next_slot + interval, …
// fall in the measured window [measure_start, end) — the slots it never sent.
uint64_t MissedSlots(SteadyClock::time_point next_slot, SteadyClock::time_point measure_start,
                     SteadyClock::time_point end, SteadyClock::duration interval);

// What one worker (an event-loop thread, or a raw XADD connection's thread) saw, over measured
// requests only.
struct WorkerStats {
  LatencyHistogram latency;
  uint64_t requests_sent = 0, requests_answered = 0, requests_missed = 0, events_missed = 0;
  uint64_t events_sent = 0, events_acked = 0, events_rejected = 0;
  uint64_t acked_json_bytes = 0, body_bytes_sent = 0, connects = 0;
  std::map<int, uint64_t> status_counts;
  std::map<std::string, uint64_t> connection_errors;
  std::map<std::string, uint64_t> reply_errors;
  std::map<std::string, uint64_t> errors_by_status;
  std::map<std::string, uint64_t> requests_by_kind;
  std::vector<AckedRange> acked;  // when the run records them, warmup included
  SecondSeries series;            // when the run records it
  SteadyClock::time_point last_answer{};
};

// Adds `stats`' counts to *report, its latencies to *latency, and moves *last_answer to its
// last answer when that is later.
void AddWorkerStats(const WorkerStats& stats, BenchReport* report, LatencyHistogram* latency,
                    SteadyClock::time_point* last_answer);

// Fills report->latency from `latency`, and the derived rates and rate_target_met from the
// report's counts and elapsed_s (so call it after those are set).
void Summarize(const LatencyHistogram& latency, BenchReport* report);

// Sleeps until `t`; true when a stop request came first.
bool StoppedBefore(const std::stop_token& stop, SteadyClock::time_point t);

}  // namespace sluice::bench::internal
