// UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits, so ids sort by creation time.
//
// Within one generator, ids are strictly increasing even for calls in the same millisecond
// (RFC 9562 §6.2 method 1: a 12-bit counter in rand_a, seeded randomly each millisecond, and
// the timestamp advanced by one when it overflows) and when the wall clock steps backwards.
//
// Concurrency: Uuid7Generator is thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace sluice::event {

class Uuid7Generator {
 public:
  explicit Uuid7Generator(Clock* clock = SystemClock());
  // "01890a5d-ac96-774b-bcce-b302099a8057": lower-case, canonical 8-4-4-4-12 form.
  std::string Next();

 private:
  Clock* clock_;
  std::mutex mu_;
  // State below is protected by mu_.
  std::mt19937_64 rng_;
  uint64_t last_ms_ = 0;
  uint32_t counter_ = 0;  // 12 bits
};

// True when `id` is in the canonical lower-case 8-4-4-4-12 form with version nibble 7 and
// variant bits 10, as Next() makes them.
bool IsUuid7(std::string_view id);

// The process-wide generator the parser uses.
Uuid7Generator& DefaultUuid7();

}  // namespace sluice::event
