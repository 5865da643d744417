#include "query/result_json.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/json_writer.h"

namespace sluice::query {
namespace {

constexpr int64_t kMaxExactInt = int64_t{1} << 53;  // doubles hold every integer up to here
constexpr int kMaxExactDecimalDigits = 15;          // ...and round-trip 15 significant digits

__extension__ typedef __int128 Int128;  // GCC/Clang; __extension__ keeps -Wpedantic quiet
__extension__ typedef unsigned __int128 Uint128;

// An owned duckdb_logical_type.
struct TypeHandle {
  duckdb_logical_type t = nullptr;
  explicit TypeHandle(duckdb_logical_type type) : t(type) {}
  ~TypeHandle() {
    if (t) duckdb_destroy_logical_type(&t);
  }
  TypeHandle(const TypeHandle&) = delete;
  TypeHandle& operator=(const TypeHandle&) = delete;
};

// Takes ownership of a char* DuckDB allocated.
std::string TakeString(char* s) {
  if (s == nullptr) return {};
  std::string out(s);
  duckdb_free(s);
  return out;
}

bool IsPlainIdentifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string FieldName(std::string_view s) {
  if (IsPlainIdentifier(s)) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

const char* ScalarTypeName(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_TIME_NS:
      return "TIME_NS";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_BIGNUM:
      return "BIGNUM";
    case DUCKDB_TYPE_SQLNULL:
      return "NULL";
    default:
      return "UNKNOWN";
  }
}

bool IsNumeric(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
    case DUCKDB_TYPE_BIGNUM:
      return true;
    default:
      return false;
  }
}

// ---- scalar text ---------------------------------------------------------------------------

void AppendUint128(Uint128 v, std::string* out) {
  char buf[40];
  char* p = buf + sizeof(buf);
  do {
    *--p = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  } while (v != 0);
  out->append(p, static_cast<size_t>(buf + sizeof(buf) - p));
}

void AppendInt128Text(Int128 v, std::string* out) {
  if (v < 0) {
    out->push_back('-');
    AppendUint128(static_cast<Uint128>(0) - static_cast<Uint128>(v), out);
  } else {
    AppendUint128(static_cast<Uint128>(v), out);
  }
}

// A number when a double holds it exactly, else a string of its digits.
void AppendInteger(Int128 v, std::string* out) {
  bool exact = v >= -kMaxExactInt && v <= kMaxExactInt;
  if (!exact) out->push_back('"');
  AppendInt128Text(v, out);
  if (!exact) out->push_back('"');
}

void AppendUnsigned(Uint128 v, std::string* out) {
  bool exact = v <= static_cast<Uint128>(kMaxExactInt);
  if (!exact) out->push_back('"');
  AppendUint128(v, out);
  if (!exact) out->push_back('"');
}

Int128 HugeintValue(duckdb_hugeint h) {
  return static_cast<Int128>((static_cast<Uint128>(static_cast<uint64_t>(h.upper)) << 64) |
                             h.lower);
}

Uint128 UhugeintValue(duckdb_uhugeint h) { return (static_cast<Uint128>(h.upper) << 64) | h.lower; }

void AppendDecimal(Int128 v, int scale, std::string* out) {
  std::string digits;
  bool negative = v < 0;
  AppendUint128(
      negative ? static_cast<Uint128>(0) - static_cast<Uint128>(v) : static_cast<Uint128>(v),
      &digits);
  if (scale > 0 && digits.size() <= static_cast<size_t>(scale)) {
    digits.insert(0, static_cast<size_t>(scale) + 1 - digits.size(), '0');
  }
  // Significant digits: the unscaled digits without leading zeros.
  size_t significant = digits.size() - std::min(digits.find_first_not_of('0'), digits.size());
  bool exact = significant <= static_cast<size_t>(kMaxExactDecimalDigits);
  if (!exact) out->push_back('"');
  if (negative) out->push_back('-');
  if (scale > 0) {
    size_t point = digits.size() - static_cast<size_t>(scale);
    out->append(digits, 0, point);
    out->push_back('.');
    out->append(digits, point, std::string::npos);
  } else {
    out->append(digits);
  }
  if (!exact) out->push_back('"');
}

template <typename F>
void AppendFloating(F v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, r.ptr);
  }
}

void AppendPadded(int64_t v, int width, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v < 0 ? -v : v);
  if (v < 0) out->push_back('-');
  for (auto n = r.ptr - buf; n < width; ++n) out->push_back('0');
  out->append(buf, r.ptr);
}

// Howard Hinnant's civil_from_days: days since 1970-01-01 → proleptic Gregorian date.
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

void AppendDateText(int64_t days, std::string* out) {
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y > 9999) out->push_back('+');
  AppendPadded(y, 4, out);
  out->push_back('-');
  AppendPadded(m, 2, out);
  out->push_back('-');
  AppendPadded(d, 2, out);
}

// "HH:MM:SS" plus `digits` fraction digits of `frac` (in units of 10^-digits s).
void AppendClock(int64_t seconds_of_day, int64_t frac, int digits, std::string* out) {
  AppendPadded(seconds_of_day / 3600, 2, out);
  out->push_back(':');
  AppendPadded(seconds_of_day / 60 % 60, 2, out);
  out->push_back(':');
  AppendPadded(seconds_of_day % 60, 2, out);
  if (digits > 0) {
    out->push_back('.');
    AppendPadded(frac, digits, out);
  }
}

// `value` in units of 10^-digits seconds since the epoch.
void AppendTimestamp(int64_t value, int digits, bool utc, std::string* out) {
  if (value == INT64_MAX || value == -INT64_MAX) {
    out->append(value > 0 ? "\"infinity\"" : "\"-infinity\"");
    return;
  }
  int64_t per_second = 1;
  for (int i = 0; i < digits; ++i) per_second *= 10;
  int64_t seconds = value / per_second;
  int64_t frac = value % per_second;
  if (frac < 0) {
    frac += per_second;
    --seconds;
  }
  int64_t days = seconds / 86'400;
  int64_t sod = seconds % 86'400;
  if (sod < 0) {
    sod += 86'400;
    --days;
  }
  out->push_back('"');
  AppendDateText(days, out);
  out->push_back('T');
  AppendClock(sod, frac, digits, out);
  if (utc) out->push_back('Z');
  out->push_back('"');
}

void AppendDate(int32_t days, std::string* out) {
  if (days == INT32_MAX || days == -INT32_MAX) {
    out->append(days > 0 ? "\"infinity\"" : "\"-infinity\"");
    return;
  }
  out->push_back('"');
  AppendDateText(days, out);
  out->push_back('"');
}

void AppendUnsignedText(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// DuckDB's interval text (IntervalToStringCast): "1 year 2 months -3 days 04:05:06.5".
void AppendIntervalText(duckdb_interval iv, std::string* out) {
  size_t start = out->size();
  auto part = [&](int64_t n, const char* unit) {
    if (out->size() != start) out->push_back(' ');
    out->append(std::to_string(n)).append(" ").append(unit);
    if (n != 1 && n != -1) out->push_back('s');
  };
  if (iv.months != 0) {
    int32_t years = iv.months / 12;
    int32_t months = iv.months - years * 12;
    if (years != 0) part(years, "year");
    if (months != 0) part(months, "month");
  }
  if (iv.days != 0) part(iv.days, "day");
  if (iv.micros != 0) {
    if (out->size() != start) out->push_back(' ');
    uint64_t micros = static_cast<uint64_t>(iv.micros);
    if (iv.micros < 0) {
      out->push_back('-');
      micros = 0 - micros;
    }
    uint64_t hours = micros / 3'600'000'000ULL;
    micros -= hours * 3'600'000'000ULL;
    uint64_t minutes = micros / 60'000'000ULL;
    micros -= minutes * 60'000'000ULL;
    uint64_t seconds = micros / 1'000'000ULL;
    micros -= seconds * 1'000'000ULL;
    if (hours < 10) out->push_back('0');
    AppendUnsignedText(hours, out);
    out->push_back(':');
    AppendPadded(static_cast<int64_t>(minutes), 2, out);
    out->push_back(':');
    AppendPadded(static_cast<int64_t>(seconds), 2, out);
    if (micros != 0) {
      std::string frac;
      AppendPadded(static_cast<int64_t>(micros), 6, &frac);
      while (frac.back() == '0') frac.pop_back();
      out->push_back('.');
      out->append(frac);
    }
  } else if (out->size() == start) {
    out->append("00:00:00");
  }
}

void AppendUuidText(duckdb_hugeint h, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t upper = static_cast<uint64_t>(h.upper) ^ (uint64_t{1} << 63);
  uint64_t halves[2] = {upper, h.lower};
  int nibble = 0;
  for (uint64_t half : halves) {
    for (int shift = 60; shift >= 0; shift -= 4, ++nibble) {
      if (nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20) out->push_back('-');
      out->push_back(kHex[(half >> shift) & 0xF]);
    }
  }
}

std::string_view StringOf(duckdb_string_t* s) {
  return {duckdb_string_t_data(s), duckdb_string_t_length(*s)};
}

// DuckDB's BLOB text: printable ASCII as is, everything else (and \ ' ") as \xHH.
void AppendBlobText(std::string_view bytes, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 32 && c <= 126 && c != '\\' && c != '\'' && c != '"') {
      out->push_back(static_cast<char>(c));
    } else {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
    }
  }
}

// BIT: the first byte counts the padding bits at the start of the second byte.
void AppendBitText(std::string_view bytes, std::string* out) {
  if (bytes.empty()) return;
  auto padding = static_cast<unsigned char>(bytes[0]);
  size_t bits = (bytes.size() - 1) * 8;
  for (size_t i = padding; i < bits; ++i) {
    auto byte = static_cast<unsigned char>(bytes[1 + i / 8]);
    out->push_back(((byte >> (7 - i % 8)) & 1) ? '1' : '0');
  }
}

// BIGNUM: a 3-byte header (top bit set for non-negative numbers; for negative ones header and
// magnitude bytes are stored inverted) and the magnitude's big-endian bytes.
void AppendBignumText(std::string_view bytes, std::string* out) {
  if (bytes.size() < 3) {
    out->push_back('0');
    return;
  }
  bool negative = (static_cast<unsigned char>(bytes[0]) & 0x80) == 0;
  std::vector<unsigned char> mag;
  for (size_t i = 3; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    mag.push_back(negative ? static_cast<unsigned char>(~b) : b);
  }
  // Repeated division by 10^9 over the byte string.
  std::vector<uint32_t> chunks;  // base 10^9, least significant first
  while (!mag.empty()) {
    uint64_t rem = 0;
    std::vector<unsigned char> next;
    for (unsigned char b : mag) {
      uint64_t cur = (rem << 8) | b;
      auto q = static_cast<unsigned char>(cur / 1'000'000'000ULL);
      rem = cur % 1'000'000'000ULL;
      if (!next.empty() || q != 0) next.push_back(q);
    }
    chunks.push_back(static_cast<uint32_t>(rem));
    mag = std::move(next);
  }
  if (chunks.empty()) chunks.push_back(0);
  if (negative && !(chunks.size() == 1 && chunks[0] == 0)) out->push_back('-');
  out->append(std::to_string(chunks.back()));
  for (size_t i = chunks.size() - 1; i-- > 0;) AppendPadded(chunks[i], 9, out);
}

void AppendTextAsString(const std::string& text, std::string* out) { AppendJsonString(out, text); }

template <typename T>
T Get(void* data, uint64_t row) {
  return static_cast<T*>(data)[row];
}

bool IsValidRow(uint64_t* validity, uint64_t row) {
  return validity == nullptr || ((validity[row / 64] >> (row % 64)) & 1) != 0;
}

}  // namespace

// ---- single values, shared with the PostgreSQL engine --------------------------------------

void AppendJsonInteger(int64_t v, std::string* out) { AppendInteger(v, out); }
void AppendJsonDouble(double v, std::string* out) { AppendFloating(v, out); }
void AppendJsonFloat(float v, std::string* out) { AppendFloating(v, out); }
void AppendJsonTimestamp(int64_t micros, bool utc, std::string* out) {
  AppendTimestamp(micros, 6, utc, out);
}
void AppendJsonDate(int32_t days, std::string* out) { AppendDate(days, out); }

void AppendJsonTime(int64_t micros, std::string* out) {
  out->push_back('"');
  AppendClock(micros / 1'000'000, micros % 1'000'000, 6, out);
  out->push_back('"');
}

void AppendJsonTimeTz(int64_t micros, int32_t offset_seconds, std::string* out) {
  out->push_back('"');
  AppendClock(micros / 1'000'000, micros % 1'000'000, 6, out);
  int32_t off = offset_seconds;
  out->push_back(off < 0 ? '-' : '+');
  off = off < 0 ? -off : off;
  AppendPadded(off / 3600, 2, out);
  out->push_back(':');
  AppendPadded(off / 60 % 60, 2, out);
  if (off % 60 != 0) {
    out->push_back(':');
    AppendPadded(off % 60, 2, out);
  }
  out->push_back('"');
}

void AppendJsonInterval(int32_t months, int32_t days, int64_t micros, std::string* out) {
  std::string text;
  AppendIntervalText(duckdb_interval{months, days, micros}, &text);
  AppendTextAsString(text, out);
}

void AppendJsonBlob(std::string_view bytes, std::string* out) {
  std::string text;
  AppendBlobText(bytes, &text);
  AppendTextAsString(text, out);
}

void AppendResultHead(const std::vector<std::string>& columns,
                      const std::vector<std::string>& types, std::string* out) {
  out->append("{\"columns\":[");
  for (size_t c = 0; c < columns.size(); ++c) {
    if (c) out->push_back(',');
    AppendJsonString(out, columns[c]);
  }
  out->append("],\"types\":[");
  for (size_t c = 0; c < types.size(); ++c) {
    if (c) out->push_back(',');
    AppendJsonString(out, types[c]);
  }
  out->append("],\"rows\":[");
}

void AppendResultTail(uint64_t rows, double elapsed_ms, std::string* out) {
  out->append("],\"row_count\":");
  AppendUnsignedText(rows, out);
  out->append(",\"elapsed_ms\":");
  AppendFloating(std::round(elapsed_ms * 1000) / 1000, out);
  out->push_back('}');
}

// ---- types ---------------------------------------------------------------------------------

ValueType DescribeType(duckdb_logical_type type) {
  ValueType v;
  v.id = duckdb_get_type_id(type);
  v.numeric = IsNumeric(v.id);
  switch (v.id) {
    case DUCKDB_TYPE_DECIMAL: {
      uint8_t width = duckdb_decimal_width(type);
      v.scale = duckdb_decimal_scale(type);
      v.internal = duckdb_decimal_internal_type(type);
      v.name = "DECIMAL(" + std::to_string(width) + "," + std::to_string(v.scale) + ")";
      break;
    }
    case DUCKDB_TYPE_ENUM: {
      v.internal = duckdb_enum_internal_type(type);
      uint32_t n = duckdb_enum_dictionary_size(type);
      v.name = "ENUM(";
      for (uint32_t i = 0; i < n; ++i) {
        v.enum_values.push_back(TakeString(duckdb_enum_dictionary_value(type, i)));
        if (i) v.name += ", ";
        v.name += "'";
        for (char c : v.enum_values.back()) {
          if (c == '\'') v.name += '\'';
          v.name += c;
        }
        v.name += "'";
      }
      v.name += ")";
      break;
    }
    case DUCKDB_TYPE_LIST: {
      TypeHandle child(duckdb_list_type_child_type(type));
      v.children.push_back(DescribeType(child.t));
      v.name = v.children[0].name + "[]";
      break;
    }
    case DUCKDB_TYPE_ARRAY: {
      TypeHandle child(duckdb_array_type_child_type(type));
      v.array_size = duckdb_array_type_array_size(type);
      v.children.push_back(DescribeType(child.t));
      v.name = v.children[0].name + "[" + std::to_string(v.array_size) + "]";
      break;
    }
    case DUCKDB_TYPE_MAP: {
      TypeHandle key(duckdb_map_type_key_type(type));
      TypeHandle value(duckdb_map_type_value_type(type));
      v.children.push_back(DescribeType(key.t));
      v.children.push_back(DescribeType(value.t));
      v.name = "MAP(" + v.children[0].name + ", " + v.children[1].name + ")";
      break;
    }
    case DUCKDB_TYPE_STRUCT:
    case DUCKDB_TYPE_UNION: {
      bool is_union = v.id == DUCKDB_TYPE_UNION;
      idx_t n =
          is_union ? duckdb_union_type_member_count(type) : duckdb_struct_type_child_count(type);
      v.name = is_union ? "UNION(" : "STRUCT(";
      for (idx_t i = 0; i < n; ++i) {
        v.field_names.push_back(TakeString(is_union ? duckdb_union_type_member_name(type, i)
                                                    : duckdb_struct_type_child_name(type, i)));
        TypeHandle child(is_union ? duckdb_union_type_member_type(type, i)
                                  : duckdb_struct_type_child_type(type, i));
        v.children.push_back(DescribeType(child.t));
        if (i) v.name += ", ";
        v.name += FieldName(v.field_names.back()) + " " + v.children.back().name;
      }
      v.name += ")";
      break;
    }
    default: {
      std::string alias = TakeString(duckdb_logical_type_get_alias(type));
      v.json = v.id == DUCKDB_TYPE_VARCHAR && alias == "JSON";
      v.name = alias.empty() ? ScalarTypeName(v.id) : alias;
      break;
    }
  }
  return v;
}

// ---- JSON validation -----------------------------------------------------------------------

struct JsonValidator::Impl {
  simdjson::dom::parser parser;
  std::string padded;
};

JsonValidator::JsonValidator() : impl_(std::make_unique<Impl>()) {}
JsonValidator::~JsonValidator() = default;

bool JsonValidator::IsValid(std::string_view text) {
  const size_t need = text.size() + simdjson::SIMDJSON_PADDING;
  if (impl_->padded.size() < need) impl_->padded.resize(std::max(need, impl_->padded.size() * 2));
  if (!text.empty()) std::memcpy(impl_->padded.data(), text.data(), text.size());
  simdjson::dom::element root;
  return impl_->parser.parse(impl_->padded.data(), text.size(), false).get(root) ==
         simdjson::SUCCESS;
}

// ---- values --------------------------------------------------------------------------------

void AppendJsonValue(const ValueType& type, duckdb_vector vector, uint64_t row,
                     JsonValidator* validator, std::string* out) {
  if (!IsValidRow(duckdb_vector_get_validity(vector), row)) {
    out->append("null");
    return;
  }
  void* data = duckdb_vector_get_data(vector);
  switch (type.id) {
    case DUCKDB_TYPE_BOOLEAN:
      out->append(Get<bool>(data, row) ? "true" : "false");
      return;
    case DUCKDB_TYPE_TINYINT:
      return AppendInteger(Get<int8_t>(data, row), out);
    case DUCKDB_TYPE_SMALLINT:
      return AppendInteger(Get<int16_t>(data, row), out);
    case DUCKDB_TYPE_INTEGER:
      return AppendInteger(Get<int32_t>(data, row), out);
    case DUCKDB_TYPE_BIGINT:
      return AppendInteger(Get<int64_t>(data, row), out);
    case DUCKDB_TYPE_UTINYINT:
      return AppendUnsigned(Get<uint8_t>(data, row), out);
    case DUCKDB_TYPE_USMALLINT:
      return AppendUnsigned(Get<uint16_t>(data, row), out);
    case DUCKDB_TYPE_UINTEGER:
      return AppendUnsigned(Get<uint32_t>(data, row), out);
    case DUCKDB_TYPE_UBIGINT:
      return AppendUnsigned(Get<uint64_t>(data, row), out);
    case DUCKDB_TYPE_HUGEINT:
      return AppendInteger(HugeintValue(Get<duckdb_hugeint>(data, row)), out);
    case DUCKDB_TYPE_UHUGEINT:
      return AppendUnsigned(UhugeintValue(Get<duckdb_uhugeint>(data, row)), out);
    case DUCKDB_TYPE_FLOAT:
      return AppendFloating(Get<float>(data, row), out);
    case DUCKDB_TYPE_DOUBLE:
      return AppendFloating(Get<double>(data, row), out);
    case DUCKDB_TYPE_DECIMAL: {
      Int128 v = 0;
      switch (type.internal) {
        case DUCKDB_TYPE_SMALLINT:
          v = Get<int16_t>(data, row);
          break;
        case DUCKDB_TYPE_INTEGER:
          v = Get<int32_t>(data, row);
          break;
        case DUCKDB_TYPE_BIGINT:
          v = Get<int64_t>(data, row);
          break;
        default:
          v = HugeintValue(Get<duckdb_hugeint>(data, row));
          break;
      }
      return AppendDecimal(v, type.scale, out);
    }
    case DUCKDB_TYPE_TIMESTAMP:
      return AppendTimestamp(Get<int64_t>(data, row), 6, false, out);
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return AppendTimestamp(Get<int64_t>(data, row), 6, true, out);
    case DUCKDB_TYPE_TIMESTAMP_S:
      return AppendTimestamp(Get<int64_t>(data, row), 0, false, out);
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return AppendTimestamp(Get<int64_t>(data, row), 3, false, out);
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return AppendTimestamp(Get<int64_t>(data, row), 9, false, out);
    case DUCKDB_TYPE_DATE:
      return AppendDate(Get<int32_t>(data, row), out);
    case DUCKDB_TYPE_TIME:
      return AppendJsonTime(Get<int64_t>(data, row), out);
    case DUCKDB_TYPE_TIME_NS: {
      int64_t ns = Get<int64_t>(data, row);
      out->push_back('"');
      AppendClock(ns / 1'000'000'000, ns % 1'000'000'000, 9, out);
      out->push_back('"');
      return;
    }
    case DUCKDB_TYPE_TIME_TZ: {
      duckdb_time_tz_struct t = duckdb_from_time_tz(Get<duckdb_time_tz>(data, row));
      int64_t seconds = t.time.hour * 3600 + t.time.min * 60 + t.time.sec;
      return AppendJsonTimeTz(seconds * 1'000'000 + t.time.micros, t.offset, out);
    }
    case DUCKDB_TYPE_INTERVAL: {
      duckdb_interval iv = Get<duckdb_interval>(data, row);
      return AppendJsonInterval(iv.months, iv.days, iv.micros, out);
    }
    case DUCKDB_TYPE_UUID: {
      out->push_back('"');
      AppendUuidText(Get<duckdb_hugeint>(data, row), out);
      out->push_back('"');
      return;
    }
    case DUCKDB_TYPE_VARCHAR: {
      std::string_view s = StringOf(&static_cast<duckdb_string_t*>(data)[row]);
      if (type.json && validator != nullptr && validator->IsValid(s)) {
        out->append(s);
      } else {
        AppendJsonString(out, s);
      }
      return;
    }
    case DUCKDB_TYPE_BLOB:
    case DUCKDB_TYPE_BIT:
    case DUCKDB_TYPE_BIGNUM: {
      std::string_view s = StringOf(&static_cast<duckdb_string_t*>(data)[row]);
      std::string text;
      if (type.id == DUCKDB_TYPE_BLOB) {
        AppendBlobText(s, &text);
      } else if (type.id == DUCKDB_TYPE_BIT) {
        AppendBitText(s, &text);
      } else {
        AppendBignumText(s, &text);
        out->append("\"").append(text).append("\"");
        return;
      }
      return AppendTextAsString(text, out);
    }
    case DUCKDB_TYPE_ENUM: {
      uint64_t idx = 0;
      switch (type.internal) {
        case DUCKDB_TYPE_UTINYINT:
          idx = Get<uint8_t>(data, row);
          break;
        case DUCKDB_TYPE_USMALLINT:
          idx = Get<uint16_t>(data, row);
          break;
        default:
          idx = Get<uint32_t>(data, row);
          break;
      }
      if (idx < type.enum_values.size()) {
        AppendJsonString(out, type.enum_values[idx]);
      } else {
        out->append("null");
      }
      return;
    }
    case DUCKDB_TYPE_LIST: {
      duckdb_list_entry e = static_cast<duckdb_list_entry*>(data)[row];
      duckdb_vector child = duckdb_list_vector_get_child(vector);
      out->push_back('[');
      for (uint64_t i = 0; i < e.length; ++i) {
        if (i) out->push_back(',');
        AppendJsonValue(type.children[0], child, e.offset + i, validator, out);
      }
      out->push_back(']');
      return;
    }
    case DUCKDB_TYPE_ARRAY: {
      duckdb_vector child = duckdb_array_vector_get_child(vector);
      out->push_back('[');
      for (uint64_t i = 0; i < type.array_size; ++i) {
        if (i) out->push_back(',');
        AppendJsonValue(type.children[0], child, row * type.array_size + i, validator, out);
      }
      out->push_back(']');
      return;
    }
    case DUCKDB_TYPE_MAP: {
      duckdb_list_entry e = static_cast<duckdb_list_entry*>(data)[row];
      duckdb_vector entries = duckdb_list_vector_get_child(vector);
      duckdb_vector keys = duckdb_struct_vector_get_child(entries, 0);
      duckdb_vector values = duckdb_struct_vector_get_child(entries, 1);
      std::string key;
      out->push_back('{');
      for (uint64_t i = 0; i < e.length; ++i) {
        if (i) out->push_back(',');
        key.clear();
        AppendJsonValue(type.children[0], keys, e.offset + i, validator, &key);
        if (!key.empty() && key[0] == '"') {
          out->append(key);  // already a JSON string
        } else {
          AppendJsonString(out, key);
        }
        out->push_back(':');
        AppendJsonValue(type.children[1], values, e.offset + i, validator, out);
      }
      out->push_back('}');
      return;
    }
    case DUCKDB_TYPE_STRUCT: {
      out->push_back('{');
      for (size_t i = 0; i < type.children.size(); ++i) {
        if (i) out->push_back(',');
        AppendJsonString(out, type.field_names[i]);
        out->push_back(':');
        AppendJsonValue(type.children[i], duckdb_struct_vector_get_child(vector, i), row, validator,
                        out);
      }
      out->push_back('}');
      return;
    }
    case DUCKDB_TYPE_UNION: {
      // Child 0 holds the tag; child i + 1 member i.
      duckdb_vector tags = duckdb_struct_vector_get_child(vector, 0);
      uint8_t tag = static_cast<uint8_t*>(duckdb_vector_get_data(tags))[row];
      if (tag >= type.children.size()) {
        out->append("null");
        return;
      }
      AppendJsonValue(type.children[tag], duckdb_struct_vector_get_child(vector, tag + 1u), row,
                      validator, out);
      return;
    }
    default:
      out->append("null");
      return;
  }
}

// ---- the document --------------------------------------------------------------------------

ResultJsonWriter::ResultJsonWriter(duckdb_result* result) {
  idx_t n = duckdb_column_count(result);
  std::vector<std::string> names, type_names;
  for (idx_t c = 0; c < n; ++c) {
    const char* name = duckdb_column_name(result, c);
    names.emplace_back(name ? name : "");
    TypeHandle t(duckdb_column_logical_type(result, c));
    types_.push_back(DescribeType(t.t));
    type_names.push_back(types_.back().name);
  }
  out_.reserve(64 * 1024);
  AppendResultHead(names, type_names, &out_);
}

bool ResultJsonWriter::AppendChunk(duckdb_data_chunk chunk, size_t max_bytes) {
  idx_t n = duckdb_data_chunk_get_size(chunk);
  std::vector<duckdb_vector> vectors(types_.size());
  for (size_t c = 0; c < types_.size(); ++c) vectors[c] = duckdb_data_chunk_get_vector(chunk, c);
  for (idx_t r = 0; r < n; ++r) {
    if (rows_ + r) out_ += ',';
    out_ += '[';
    for (size_t c = 0; c < types_.size(); ++c) {
      if (c) out_ += ',';
      AppendJsonValue(types_[c], vectors[c], r, &validator_, &out_);
    }
    out_ += ']';
    if (out_.size() > max_bytes) return false;
  }
  rows_ += n;
  return true;
}

std::string ResultJsonWriter::Finish(double elapsed_ms) {
  AppendResultTail(rows_, elapsed_ms, &out_);
  return std::move(out_);
}

}  // namespace sluice::query
