// RateLimiter: one token bucket per key, refilled at `rate` tokens a second up to `burst`.
// Ingest takes one token per event, so the limit is in events per second per write key.
//
// A request needing more tokens than `burst` is allowed when the bucket is full (the bucket
// then goes negative), so a large batch is never refused forever.
//
// Concurrency: thread-safe (one mutex; the critical section is a few arithmetic operations).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"

namespace sluice::http {

class RateLimiter {
 public:
  // rate <= 0 disables limiting. burst <= 0 means one second's worth (= rate).
  RateLimiter(double rate, double burst, Clock* clock = SystemClock());
  bool enabled() const { return rate_ > 0; }
  // Takes `n` tokens from `key`'s bucket and returns true, or returns false and sets
  // *retry_after_s to the seconds until enough tokens will be there.
  bool TryTake(std::string_view key, double n, double* retry_after_s);

 private:
  struct Bucket {
    double tokens;
    int64_t last_us;
  };
  const double rate_;
  const double burst_;
  Clock* clock_;
  std::mutex mu_;
  // State below is protected by mu_.
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace sluice::http
