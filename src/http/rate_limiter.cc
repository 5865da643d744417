#include "http/rate_limiter.h"

#include <algorithm>

namespace sluice::http {

RateLimiter::RateLimiter(double rate, double burst, Clock* clock)
    : rate_(rate), burst_(burst > 0 ? burst : rate), clock_(clock) {}

bool RateLimiter::TryTake(std::string_view key, double n, double* retry_after_s) {
  if (rate_ <= 0) return true;
  int64_t now = clock_->MonotonicMicros();
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + static_cast<double>(now - b.last_us) / 1e6 * rate_);
  b.last_us = now;
  double need = std::min(n, burst_);
  if (b.tokens >= need) {
    b.tokens -= n;
    return true;
  }
  *retry_after_s = (need - b.tokens) / rate_;
  return false;
}

}  // namespace sluice::http
