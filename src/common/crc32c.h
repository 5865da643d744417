// CRC-32C (Castagnoli), the checksum that frames every DiskLog record.
//
// Written here because Debian 12 packages no CRC-32C library (google/crc32c is not in
// bookworm) and zlib's crc32 uses the other polynomial, which x86 has no instruction for.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both give the
// same value (checked by crc32c_test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::crc32c {

// Extends `crc` (the value of a previous call, or 0 to start) with `n` bytes.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }
// The portable table implementation; exposed so tests can compare it with the fast path.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);

}  // namespace sluice::crc32c
