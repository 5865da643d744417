#include "query/postgres_result.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "common/json_writer.h"

namespace sluice::query {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
constexpr int kMaxExactDecimalDigits = 15;  // a double round-trips 15 significant digits

struct KnownType {
  uint32_t oid;
  const char* name;
  PgValueKind kind;
};

// Built-in types (pg_type.dat); arrays are listed with their element's kind.
constexpr KnownType kScalars[] = {
    {16, "BOOLEAN", PgValueKind::kBool},
    {20, "BIGINT", PgValueKind::kInteger},
    {21, "SMALLINT", PgValueKind::kInteger},
    {23, "INTEGER", PgValueKind::kInteger},
    {26, "UINTEGER", PgValueKind::kInteger},  // oid
    {700, "FLOAT", PgValueKind::kFloat4},
    {701, "DOUBLE", PgValueKind::kFloat8},
    {1700, "DECIMAL", PgValueKind::kNumeric},
    {18, "VARCHAR", PgValueKind::kText},  // "char"
    {19, "VARCHAR", PgValueKind::kText},  // name
    {25, "VARCHAR", PgValueKind::kText},
    {1042, "VARCHAR", PgValueKind::kText},  // char(n)
    {1043, "VARCHAR", PgValueKind::kText},
    {114, "JSON", PgValueKind::kJson},
    {3802, "JSON", PgValueKind::kJson},  // jsonb
    {1184, "TIMESTAMP WITH TIME ZONE", PgValueKind::kTimestampTz},
    {1114, "TIMESTAMP", PgValueKind::kTimestamp},
    {1082, "DATE", PgValueKind::kDate},
    {1083, "TIME", PgValueKind::kTime},
    {1266, "TIME WITH TIME ZONE", PgValueKind::kTimeTz},
    {1186, "INTERVAL", PgValueKind::kInterval},
    {2950, "UUID", PgValueKind::kText},
    {17, "BLOB", PgValueKind::kBytea},
    {1560, "BIT", PgValueKind::kText},
    {1562, "BIT", PgValueKind::kText},  // varbit
};

struct KnownArray {
  uint32_t oid;
  uint32_t element;
};

constexpr KnownArray kArrays[] = {
    {1000, 16},   {1016, 20},   {1005, 21},   {1007, 23},   {1028, 26},   {1021, 700},
    {1022, 701},  {1231, 1700}, {1002, 18},   {1003, 19},   {1009, 25},   {1014, 1042},
    {1015, 1043}, {199, 114},   {3807, 3802}, {1185, 1184}, {1115, 1114}, {1182, 1082},
    {1183, 1083}, {1270, 1266}, {1187, 1186}, {2951, 2950}, {1001, 17},   {1561, 1560},
    {1563, 1562},
};

const KnownType* FindScalar(uint32_t oid) {
  for (const auto& t : kScalars) {
    if (t.oid == oid) return &t;
  }
  return nullptr;
}

// numeric's typmod: ((precision << 16) | scale) + 4; -1 when unconstrained.
std::string NumericName(int typmod) {
  if (typmod < 4) return "DECIMAL";
  int v = typmod - 4;
  return "DECIMAL(" + std::to_string((v >> 16) & 0xFFFF) + "," + std::to_string(v & 0xFFFF) + ")";
}

// ---- text parsing --------------------------------------------------------------------------

// Reads an unsigned decimal number of at least `min_digits` digits at the front of `s`.
bool ReadNumber(std::string_view& s, int64_t* v, size_t min_digits = 1, size_t max_digits = 18) {
  size_t n = 0;
  while (n < s.size() && n < max_digits && s[n] >= '0' && s[n] <= '9') ++n;
  if (n < min_digits) return false;
  std::from_chars(s.data(), s.data() + n, *v);
  s.remove_prefix(n);
  return true;
}

bool Consume(std::string_view& s, char c) {
  if (s.empty() || s[0] != c) return false;
  s.remove_prefix(1);
  return true;
}

bool ConsumeSuffix(std::string_view& s, std::string_view suffix) {
  if (s.size() < suffix.size() || s.substr(s.size() - suffix.size()) != suffix) return false;
  s.remove_suffix(suffix.size());
  return true;
}

// Howard Hinnant's days_from_civil: a proleptic Gregorian date → days since 1970-01-01.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "YYYY-MM-DD" (4+ digit year) → days since the epoch; `bc` from a trailing " BC".
bool ParseDate(std::string_view& s, bool bc, int64_t* days) {
  int64_t y = 0, m = 0, d = 0;
  if (!ReadNumber(s, &y, 4, 9) || !Consume(s, '-') || !ReadNumber(s, &m, 2, 2) ||
      !Consume(s, '-') || !ReadNumber(s, &d, 2, 2) || m < 1 || m > 12 || d < 1 || d > 31) {
    return false;
  }
  if (bc) y = 1 - y;  // 1 BC is year 0
  *days = DaysFromCivil(y, m, d);
  return true;
}

// "HH:MM:SS[.ffffff]" → microseconds since midnight (hours up to 24 for time, more for
// interval).
bool ParseClock(std::string_view& s, int64_t* micros, size_t max_hour_digits = 2) {
  int64_t h = 0, mi = 0, sec = 0, frac = 0;
  if (!ReadNumber(s, &h, 2, max_hour_digits) || !Consume(s, ':') || !ReadNumber(s, &mi, 2, 2) ||
      !Consume(s, ':') || !ReadNumber(s, &sec, 2, 2) || mi > 59 || sec > 60) {
    return false;
  }
  if (Consume(s, '.')) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0 || n > 6) return false;
    std::from_chars(s.data(), s.data() + n, frac);
    for (size_t i = n; i < 6; ++i) frac *= 10;
    s.remove_prefix(n);
  }
  if (h > std::numeric_limits<int64_t>::max() / (3600 * kMicrosPerSecond) - 1) return false;
  *micros = ((h * 60 + mi) * 60 + sec) * kMicrosPerSecond + frac;
  return true;
}

// "+HH[:MM[:SS]]" → seconds east of UTC.
bool ParseOffset(std::string_view& s, int64_t* seconds) {
  if (s.empty() || (s[0] != '+' && s[0] != '-')) return false;
  bool negative = s[0] == '-';
  s.remove_prefix(1);
  int64_t h = 0, m = 0, sec = 0;
  if (!ReadNumber(s, &h, 2, 2)) return false;
  if (Consume(s, ':') && !ReadNumber(s, &m, 2, 2)) return false;
  if (Consume(s, ':') && !ReadNumber(s, &sec, 2, 2)) return false;
  *seconds = (negative ? -1 : 1) * (h * 3600 + m * 60 + sec);
  return true;
}

bool AppendInfinity(std::string_view text, std::string* out) {
  if (text == "infinity" || text == "-infinity") {
    out->append("\"").append(text).append("\"");
    return true;
  }
  return false;
}

bool AppendDateValue(std::string_view s, std::string* out) {
  if (AppendInfinity(s, out)) return true;
  bool bc = ConsumeSuffix(s, " BC");
  int64_t days = 0;
  if (!ParseDate(s, bc, &days) || !s.empty() || days < std::numeric_limits<int32_t>::min() ||
      days > std::numeric_limits<int32_t>::max()) {
    return false;
  }
  AppendJsonDate(static_cast<int32_t>(days), out);
  return true;
}

// "2024-05-01 12:00:00.5+00[:00[:00]][ BC]" (the offset only with a zone).
bool AppendTimestampValue(std::string_view s, bool with_zone, std::string* out) {
  if (AppendInfinity(s, out)) return true;
  bool bc = ConsumeSuffix(s, " BC");
  int64_t days = 0, micros = 0, offset = 0;
  if (!ParseDate(s, bc, &days) || !Consume(s, ' ') || !ParseClock(s, &micros)) return false;
  if (with_zone && !ParseOffset(s, &offset)) return false;
  if (!s.empty()) return false;
  int64_t t = 0;
  if (__builtin_mul_overflow(days, kMicrosPerDay, &t) || __builtin_add_overflow(t, micros, &t) ||
      __builtin_sub_overflow(t, offset * kMicrosPerSecond, &t) ||
      t == std::numeric_limits<int64_t>::max() || t == -std::numeric_limits<int64_t>::max()) {
    return false;  // out of range, or the value DuckDB's writer reserves for infinity
  }
  AppendJsonTimestamp(t, with_zone, out);
  return true;
}

bool AppendTimeValue(std::string_view s, bool with_zone, std::string* out) {
  int64_t micros = 0, offset = 0;
  if (!ParseClock(s, &micros) || micros > kMicrosPerDay) return false;
  if (with_zone && !ParseOffset(s, &offset)) return false;
  if (!s.empty()) return false;
  if (with_zone) {
    AppendJsonTimeTz(micros, static_cast<int32_t>(offset), out);
  } else {
    AppendJsonTime(micros, out);
  }
  return true;
}

// IntervalStyle postgres: "1 year 2 mons -3 days +04:05:06.5", "00:00:00", "-00:00:01".
bool AppendIntervalValue(std::string_view s, std::string* out) {
  int64_t months = 0, days = 0, micros = 0;
  bool any = false;
  while (!s.empty()) {
    bool negative = s[0] == '-';
    if (s[0] == '-' || s[0] == '+') s.remove_prefix(1);
    std::string_view probe = s;
    int64_t n = 0;
    if (!ReadNumber(probe, &n, 1, 10)) return false;
    if (!probe.empty() && probe[0] == ':') {  // the clock part
      int64_t clock = 0;
      if (!ParseClock(s, &clock, 10)) return false;
      micros += negative ? -clock : clock;
    } else {
      s = probe;
      if (!Consume(s, ' ')) return false;
      size_t end = s.find(' ');
      std::string_view unit = s.substr(0, end);
      s.remove_prefix(end == std::string_view::npos ? s.size() : end);
      if (negative) n = -n;
      if (unit == "year" || unit == "years") {
        months += n * 12;
      } else if (unit == "mon" || unit == "mons") {
        months += n;
      } else if (unit == "day" || unit == "days") {
        days += n;
      } else {
        return false;
      }
    }
    any = true;
    if (!s.empty() && !Consume(s, ' ')) return false;
  }
  if (!any || months < std::numeric_limits<int32_t>::min() ||
      months > std::numeric_limits<int32_t>::max() ||
      days < std::numeric_limits<int32_t>::min() || days > std::numeric_limits<int32_t>::max()) {
    return false;
  }
  AppendJsonInterval(static_cast<int32_t>(months), static_cast<int32_t>(days), micros, out);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea_output hex: "\x68656c6c6f".
bool AppendByteaValue(std::string_view s, std::string* out) {
  if (s.size() < 2 || s[0] != '\\' || s[1] != 'x' || s.size() % 2 != 0) return false;
  std::string bytes;
  bytes.reserve((s.size() - 2) / 2);
  for (size_t i = 2; i < s.size(); i += 2) {
    int hi = HexValue(s[i]), lo = HexValue(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes.push_back(static_cast<char>(hi * 16 + lo));
  }
  AppendJsonBlob(bytes, out);
  return true;
}

bool AppendIntegerValue(std::string_view s, std::string* out) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  AppendJsonInteger(v, out);
  return true;
}

// numeric_out: "-123.450", "NaN", "Infinity", "-Infinity"; never an exponent.
bool AppendNumericValue(std::string_view s, std::string* out) {
  if (s == "NaN" || s == "Infinity" || s == "-Infinity") {
    out->append("\"").append(s).append("\"");
    return true;
  }
  std::string_view body = s;
  if (!body.empty() && body[0] == '-') body.remove_prefix(1);
  size_t digits = 0, significant = 0, dots = 0;
  bool leading = true;
  for (char c : body) {
    if (c == '.') {
      ++dots;
      continue;
    }
    if (c < '0' || c > '9') return false;
    ++digits;
    if (c != '0') leading = false;
    if (!leading) ++significant;
  }
  if (digits == 0 || dots > 1 || body[0] == '.' || body.back() == '.') return false;
  bool exact = significant <= static_cast<size_t>(kMaxExactDecimalDigits);
  if (!exact) out->push_back('"');
  out->append(s);
  if (!exact) out->push_back('"');
  return true;
}

template <typename F>
bool AppendFloatValue(std::string_view s, std::string* out) {
  F v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (p != s.data() + s.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return false;
  }
  if constexpr (sizeof(F) == sizeof(float)) {
    AppendJsonFloat(v, out);
  } else {
    AppendJsonDouble(v, out);
  }
  return true;
}

// One value of `kind` from its text; false (nothing appended) when the text is not in the
// expected form.
bool AppendScalar(PgValueKind kind, std::string_view text, JsonValidator* validator,
                  std::string* out) {
  switch (kind) {
    case PgValueKind::kBool:
      if (text != "t" && text != "f") return false;
      out->append(text == "t" ? "true" : "false");
      return true;
    case PgValueKind::kInteger:
      return AppendIntegerValue(text, out);
    case PgValueKind::kNumeric:
      return AppendNumericValue(text, out);
    case PgValueKind::kFloat4:
      return AppendFloatValue<float>(text, out);
    case PgValueKind::kFloat8:
      return AppendFloatValue<double>(text, out);
    case PgValueKind::kJson:
      if (validator == nullptr || !validator->IsValid(text)) return false;
      out->append(text);
      return true;
    case PgValueKind::kTimestampTz:
      return AppendTimestampValue(text, true, out);
    case PgValueKind::kTimestamp:
      return AppendTimestampValue(text, false, out);
    case PgValueKind::kDate:
      return AppendDateValue(text, out);
    case PgValueKind::kTime:
      return AppendTimeValue(text, false, out);
    case PgValueKind::kTimeTz:
      return AppendTimeValue(text, true, out);
    case PgValueKind::kInterval:
      return AppendIntervalValue(text, out);
    case PgValueKind::kBytea:
      return AppendByteaValue(text, out);
    case PgValueKind::kText:
    case PgValueKind::kArray:
      break;
  }
  AppendJsonString(out, text);
  return true;
}

// array_out: "{1,2,NULL}", "{{1,2},{3,4}}", "{\"a b\",\"x\\\"y\"}", optionally after a bounds
// decoration "[0:1]=". Parses one level starting at `s` (at its '{').
bool AppendArrayLevel(std::string_view& s, PgValueKind element, JsonValidator* validator,
                      std::string* out) {
  if (!Consume(s, '{')) return false;
  out->push_back('[');
  bool first = true;
  if (Consume(s, '}')) {
    out->push_back(']');
    return true;
  }
  std::string item;
  for (;;) {
    if (!first) out->push_back(',');
    first = false;
    if (!s.empty() && s[0] == '{') {
      if (!AppendArrayLevel(s, element, validator, out)) return false;
    } else if (!s.empty() && s[0] == '"') {
      s.remove_prefix(1);
      item.clear();
      for (;;) {
        if (s.empty()) return false;
        char c = s[0];
        s.remove_prefix(1);
        if (c == '"') break;
        if (c == '\\') {
          if (s.empty()) return false;
          c = s[0];
          s.remove_prefix(1);
        }
        item.push_back(c);
      }
      if (!AppendScalar(element, item, validator, out)) return false;
    } else {
      size_t end = s.find_first_of(",}");
      if (end == std::string_view::npos || end == 0) return false;
      std::string_view bare = s.substr(0, end);
      s.remove_prefix(end);
      if (bare == "NULL") {
        out->append("null");
      } else if (!AppendScalar(element, bare, validator, out)) {
        return false;
      }
    }
    if (Consume(s, '}')) break;
    if (!Consume(s, ',')) return false;
  }
  out->push_back(']');
  return true;
}

bool AppendArrayValue(std::string_view s, PgValueKind element, JsonValidator* validator,
                      std::string* out) {
  if (!s.empty() && s[0] == '[') {  // "[0:1]={…}": the bounds are dropped
    size_t eq = s.find('=');
    if (eq == std::string_view::npos) return false;
    s.remove_prefix(eq + 1);
  }
  std::string rendered;
  if (!AppendArrayLevel(s, element, validator, &rendered) || !s.empty()) return false;
  out->append(rendered);
  return true;
}

}  // namespace

std::optional<PgColumnType> DescribePgType(uint32_t oid, int typmod) {
  if (const KnownType* t = FindScalar(oid)) {
    PgColumnType c{oid, t->name, t->kind};
    if (oid == 1700) c.name = NumericName(typmod);
    return c;
  }
  for (const auto& a : kArrays) {
    if (a.oid != oid) continue;
    const KnownType* e = FindScalar(a.element);
    PgColumnType c{oid, std::string(a.element == 1700 ? "DECIMAL" : e->name) + "[]",
                   PgValueKind::kArray, e->kind};
    return c;
  }
  return std::nullopt;
}

PgColumnType OtherPgType(uint32_t oid, std::string name) {
  return PgColumnType{oid, std::move(name), PgValueKind::kText};
}

void AppendPgValue(const PgColumnType& type, std::string_view text, JsonValidator* validator,
                   std::string* out) {
  bool done = type.kind == PgValueKind::kArray
                  ? AppendArrayValue(text, type.element, validator, out)
                  : AppendScalar(type.kind, text, validator, out);
  if (!done) AppendJsonString(out, text);
}

PgResultJsonWriter::PgResultJsonWriter(const std::vector<std::string>& columns,
                                       std::vector<PgColumnType> types)
    : types_(std::move(types)) {
  std::vector<std::string> names;
  names.reserve(types_.size());
  for (const auto& t : types_) names.push_back(t.name);
  out_.reserve(64 * 1024);
  AppendResultHead(columns, names, &out_);
}

bool PgResultJsonWriter::AppendRow(const PGresult* res, int row, size_t max_bytes) {
  if (rows_) out_ += ',';
  out_ += '[';
  for (size_t c = 0; c < types_.size(); ++c) {
    if (c) out_ += ',';
    const int col = static_cast<int>(c);
    if (PQgetisnull(res, row, col)) {
      out_ += "null";
      continue;
    }
    std::string_view text(PQgetvalue(res, row, col),
                          static_cast<size_t>(PQgetlength(res, row, col)));
    AppendPgValue(types_[c], text, &validator_, &out_);
  }
  out_ += ']';
  ++rows_;
  return out_.size() <= max_bytes;
}

std::string PgResultJsonWriter::Finish(double elapsed_ms) {
  AppendResultTail(rows_, elapsed_ms, &out_);
  return std::move(out_);
}

}  // namespace sluice::query
