// UUIDv7 layout (RFC 9562 §5.7), most significant bit first:
//   unix_ts_ms:48 | ver:4 (0b0111) | rand_a:12 (our counter) | var:2 (0b10) | rand_b:62
//
// Monotonicity (§6.2, method 1, "fixed bit-length dedicated counter"): `last_ms_` is the
// timestamp of the previous id. A later clock reading starts a new millisecond with the
// counter seeded from 11 random bits (the top bit left clear, so at least 2048 ids fit before
// it overflows). A reading equal to or earlier than `last_ms_` (same millisecond, or the clock
// stepped back) reuses `last_ms_` and increments the counter; when the counter overflows 12
// bits, `last_ms_` is advanced by one, borrowing from the future until the clock catches up.

#include "event/uuid.h"

namespace sluice::event {
namespace {

constexpr uint64_t kTimestampMask = (uint64_t{1} << 48) - 1;
constexpr uint32_t kCounterMax = 0xfff;
constexpr uint32_t kCounterSeedMask = 0x7ff;

}  // namespace

Uuid7Generator::Uuid7Generator(Clock* clock) : clock_(clock) {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  rng_.seed(seq);
}

std::string Uuid7Generator::Next() {
  const int64_t now_us = clock_->NowMicros();
  const uint64_t now_ms = now_us > 0 ? static_cast<uint64_t>(now_us / 1000) & kTimestampMask : 0;

  uint64_t ms = 0;
  uint32_t counter = 0;
  uint64_t rand_b = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now_ms > last_ms_) {
      last_ms_ = now_ms;
      counter_ = static_cast<uint32_t>(rng_()) & kCounterSeedMask;
    } else if (counter_ < kCounterMax) {
      ++counter_;
    } else {
      last_ms_ = (last_ms_ + 1) & kTimestampMask;
      counter_ = static_cast<uint32_t>(rng_()) & kCounterSeedMask;
    }
    ms = last_ms_;
    counter = counter_;
    rand_b = rng_();
  }

  const uint64_t hi = (ms << 16) | (uint64_t{0x7} << 12) | counter;
  const uint64_t lo = (uint64_t{0x2} << 62) | (rand_b & ((uint64_t{1} << 62) - 1));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t pos = 0;
  auto put = [&](uint64_t word, int nibbles_from, int nibbles_to) {
    for (int i = nibbles_from; i < nibbles_to; ++i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(word >> (60 - 4 * i)) & 0xf];
    }
  };
  put(hi, 0, 16);
  put(lo, 0, 16);
  return out;
}

Uuid7Generator& DefaultUuid7() {
  static auto* generator = new Uuid7Generator();  // never destroyed: usable during exit
  return *generator;
}

bool IsUuid7(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return id[14] == '7' && (id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

}  // namespace sluice::event
