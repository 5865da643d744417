// Parsing of the human units used by flags and config: byte sizes ("4MiB", "32KiB", "8GB",
// "1048576") and durations ("10m", "500ms", "2h", "30s", "1d"). Binary (KiB) and decimal (KB)
// suffixes are both accepted; a bare number means bytes / seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

Result<uint64_t> ParseBytes(std::string_view text);
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "10m", "1h30m" is not produced: the largest unit that divides the value exactly.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace sluice
