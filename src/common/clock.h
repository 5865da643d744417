// Clock: the source of wall and monotonic time, injected so tests control time (Envoy's
// TimeSource). Times are microseconds: wall time since the Unix epoch, monotonic since an
// arbitrary start.
//
// Concurrency: every implementation here is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() const = 0;        // wall clock, for received_at
  virtual int64_t MonotonicMicros() const = 0;  // for durations and rate limits
};

// The process-wide real clock. Never null, never destroyed.
Clock* SystemClock();

// A clock that moves only when told to. Both readings advance together.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_micros = 1'700'000'000'000'000) : now_(now_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  int64_t MonotonicMicros() const override { return now_.load(); }
  void Advance(int64_t micros) { now_.fetch_add(micros); }
  void Set(int64_t micros) { now_.store(micros); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace sluice
