#include "common/units.h"

#include <charconv>
#include <cmath>

namespace sluice {
namespace {

// Splits "12.5MiB" into 12.5 and "MiB".
bool SplitNumber(std::string_view text, double* value, std::string_view* suffix) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, *value);
  if (ec != std::errc() || ptr != text.data() + i || *value < 0) return false;
  *suffix = text.substr(i);
  while (!suffix->empty() && suffix->front() == ' ') suffix->remove_prefix(1);
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace

Result<uint64_t> ParseBytes(std::string_view text) {
  double v;
  std::string_view suffix;
  if (!SplitNumber(text, &v, &suffix)) {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\" is not a size: use a number with an optional unit, "
                                   "e.g. 4MiB, 512KiB, 8GB");
  }
  struct Unit {
    std::string_view name;
    double mult;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},         {"b", 1},       {"k", 1024},     {"kb", 1e3},    {"kib", 1024},
      {"m", 1 << 20},  {"mb", 1e6},    {"mib", 1 << 20}, {"g", 1 << 30}, {"gb", 1e9},
      {"gib", 1 << 30}, {"t", 1099511627776.0}, {"tb", 1e12}, {"tib", 1099511627776.0}};
  for (const auto& u : kUnits) {
    if (EqualsIgnoreCase(suffix, u.name)) return static_cast<uint64_t>(std::llround(v * u.mult));
  }
  return Status::InvalidArgument("\"" + std::string(text) +
                                 "\" has an unknown size unit: use B, KiB, MiB, GiB, KB, MB or GB");
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  double v;
  std::string_view suffix;
  if (!SplitNumber(text, &v, &suffix)) {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\" is not a duration: use a number with a unit, e.g. "
                                   "500ms, 30s, 10m, 2h");
  }
  struct Unit {
    std::string_view name;
    double ms;
  };
  static constexpr Unit kUnits[] = {{"ms", 1},       {"", 1000},       {"s", 1000},
                                    {"m", 60'000},   {"min", 60'000},  {"h", 3'600'000},
                                    {"d", 86'400'000}};
  for (const auto& u : kUnits) {
    if (EqualsIgnoreCase(suffix, u.name)) {
      return std::chrono::milliseconds(static_cast<int64_t>(std::llround(v * u.ms)));
    }
  }
  return Status::InvalidArgument("\"" + std::string(text) +
                                 "\" has an unknown duration unit: use ms, s, m, h or d");
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace sluice
