#include "bench/request_mix.h"

namespace sluice::bench {
namespace {

// SplitMix64's finaliser: a well-mixed hash of k, the same on every platform.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int Between(uint64_t r, int lo, int hi) {
  return lo + static_cast<int>(r % static_cast<uint64_t>(hi - lo + 1));
}

}  // namespace

std::string_view RequestKindName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kTrack:
      return "track";
    case RequestKind::kBrowserBatch:
      return "browser_batch";
    case RequestKind::kServerBatch:
      return "server_batch";
    case RequestKind::kFixed:
      break;
  }
  return "fixed";
}

RequestShape RequestMix::Draw(uint64_t k) const {
  if (!IsSeed()) return {RequestKind::kFixed, fixed_batch_};
  // Two independent draws from one 64-bit hash: the kind from its high bits, the size from the
  // low ones (both moduli are tiny against 2^32, so the bias is below 10^-7).
  const uint64_t h = Mix(k ^ Mix(seed_ ^ 0x5eed'4d1cULL));
  const auto percent = static_cast<int>((h >> 32) % 100);
  const uint64_t low = h & 0xffff'ffffULL;
  if (percent < kTrackPercent) return {RequestKind::kTrack, 1};
  if (percent < kTrackPercent + kBrowserBatchPercent) {
    return {RequestKind::kBrowserBatch, Between(low, kBrowserBatchMin, kBrowserBatchMax)};
  }
  return {RequestKind::kServerBatch, Between(low, kServerBatchMin, kServerBatchMax)};
}

double RequestMix::MeanEvents() const {
  if (!IsSeed()) return fixed_batch_;
  return (kTrackPercent * 1.0 + kBrowserBatchPercent * (kBrowserBatchMin + kBrowserBatchMax) / 2.0 +
          kServerBatchPercent * (kServerBatchMin + kServerBatchMax) / 2.0) /
         100.0;
}

RequestSequencer::Next RequestSequencer::Take() {
  std::lock_guard lock(mu_);
  Next n;
  n.index = next_index_++;
  n.shape = mix_.Draw(n.index);
  n.first_seq = next_seq_;
  next_seq_ += static_cast<uint64_t>(n.shape.events);
  return n;
}

}  // namespace sluice::bench
