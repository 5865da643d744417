// ParseTimestamp and FormatTimestamp (declared in event/parser.h), written by hand: no locale,
// no std::get_time, no time zone database. Civil-date arithmetic is Howard Hinnant's
// days_from_civil / civil_from_days, exact for the proleptic Gregorian calendar.

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "event/parser.h"
#include "event/quote.h"

namespace sluice::event {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;

constexpr std::array<std::string_view, 12> kMonthNames = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[static_cast<size_t>(m - 1)];
}

// Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                    // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;
  int month;
  int day;
};

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);               // [1, 31]
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);                  // [1, 12]
  return {yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

// Reads exactly `n` ASCII digits at text[*pos]; advances *pos.
bool ReadDigits(std::string_view text, size_t* pos, size_t n, int* out) {
  if (text.size() - *pos < n) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Consume(std::string_view text, size_t* pos, char c) {
  if (*pos < text.size() && text[*pos] == c) {
    ++*pos;
    return true;
  }
  return false;
}

Status Invalid(std::string_view text, std::string_view why) {
  std::string m = "not an ISO-8601 time: " + QuoteForMessage(text);
  if (!why.empty()) {
    m += " (";
    m += why;
    m += ')';
  }
  return Status::InvalidArgument(std::move(m));
}

constexpr std::string_view kExpectedForm =
    "expected YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS[.fraction] with Z or an offset like +02:00";

}  // namespace

Result<int64_t> ParseTimestamp(std::string_view text) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0;
  if (!ReadDigits(text, &pos, 4, &year) || !Consume(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &month) || !Consume(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &day)) {
    return Invalid(text, kExpectedForm);
  }
  if (year < 1970) return Invalid(text, "years before 1970 are not accepted");
  if (month < 1 || month > 12) {
    return Invalid(text, "month " + std::to_string(month) + " is out of range 01-12");
  }
  if (day < 1 || day > DaysInMonth(year, month)) {
    return Invalid(text, "day " + std::to_string(day) + " is out of range for " +
                             std::string(kMonthNames[static_cast<size_t>(month - 1)]) + " " +
                             std::to_string(year));
  }
  const int64_t days = DaysFromCivil(year, month, day);
  if (pos == text.size()) return days * kSecondsPerDay * kMicrosPerSecond;  // date only

  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return Invalid(text, kExpectedForm);
  ++pos;
  int hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &pos, 2, &hour) || !Consume(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &minute)) {
    return Invalid(text, kExpectedForm);
  }
  const bool has_seconds = Consume(text, &pos, ':');
  if (has_seconds && !ReadDigits(text, &pos, 2, &second)) return Invalid(text, kExpectedForm);
  if (hour > 23) return Invalid(text, "hour " + std::to_string(hour) + " is out of range 00-23");
  if (minute > 59) {
    return Invalid(text, "minute " + std::to_string(minute) + " is out of range 00-59");
  }
  if (second > 60) {
    return Invalid(text, "second " + std::to_string(second) + " is out of range 00-60");
  }
  int64_t micros = 0;
  if (has_seconds && Consume(text, &pos, '.')) {
    size_t digits = 0;
    int64_t scale = 100'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++digits > 9) return Invalid(text, "more than 9 fractional digits");
      micros += (text[pos] - '0') * scale;  // digits past the 6th have scale 0: truncated
      scale /= 10;
      ++pos;
    }
    if (digits == 0) return Invalid(text, "no digits after the decimal point");
  }
  int64_t offset_seconds = 0;
  if (pos < text.size()) {
    const char c = text[pos++];
    if (c == 'Z' || c == 'z') {
      // UTC
    } else if (c == '+' || c == '-') {
      int oh = 0, om = 0;
      if (!ReadDigits(text, &pos, 2, &oh)) return Invalid(text, "offset must be ±HH:MM or ±HHMM");
      Consume(text, &pos, ':');
      if (!ReadDigits(text, &pos, 2, &om)) return Invalid(text, "offset must be ±HH:MM or ±HHMM");
      if (oh > 23 || om > 59) return Invalid(text, "offset is out of range");
      offset_seconds = (c == '+' ? 1 : -1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
    } else {
      return Invalid(text, kExpectedForm);
    }
    if (pos != text.size()) return Invalid(text, "unexpected text after the time zone");
  }
  const int64_t seconds =
      days * kSecondsPerDay + int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_seconds;
  return seconds * kMicrosPerSecond + micros;
}

std::string FormatTimestamp(int64_t micros) {
  // Floor division so that times before 1970 format correctly too.
  int64_t seconds = micros / kMicrosPerSecond;
  int64_t frac = micros % kMicrosPerSecond;
  if (frac < 0) {
    frac += kMicrosPerSecond;
    --seconds;
  }
  int64_t days = seconds / kSecondsPerDay;
  int64_t sod = seconds % kSecondsPerDay;
  if (sod < 0) {
    sod += kSecondsPerDay;
    --days;
  }
  const CivilDate date = CivilFromDays(days);
  // Longest: "-292277-01-01T00:00:00.000000Z"; 40 leaves room.
  std::array<char, 40> buf{};
  char* p = buf.data();
  char* const end = buf.data() + buf.size();
  auto put_fixed = [&p](int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    p += width;
  };
  int64_t year = date.year;
  if (year < 0) {
    *p++ = '-';
    year = -year;
  }
  if (year > 9999) {
    p = std::to_chars(p, end, year).ptr;
  } else {
    put_fixed(year, 4);
  }
  *p++ = '-';
  put_fixed(date.month, 2);
  *p++ = '-';
  put_fixed(date.day, 2);
  *p++ = 'T';
  put_fixed(sod / 3600, 2);
  *p++ = ':';
  put_fixed(sod / 60 % 60, 2);
  *p++ = ':';
  put_fixed(sod % 60, 2);
  *p++ = '.';
  put_fixed(frac, 6);
  *p++ = 'Z';
  return std::string(buf.data(), p);
}

}  // namespace sluice::event
