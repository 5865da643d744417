// ResultJsonWriter: renders a DuckDB result, chunk by chunk, as the body of POST /v1/query:
//   {"columns":["a","b"],"types":["BIGINT","VARCHAR"],"rows":[[1,"x"],…],"row_count":N,
//    "elapsed_ms":12.3}
//
// Values are read straight from the chunks' vectors (no per-value C API calls, no VARCHAR
// casts), so 100k rows render in tens of milliseconds. How each type is written:
//   - BOOLEAN: true/false.  NULL (any type): null.
//   - Integers of every width (HUGEINT too): a JSON number when a double holds it exactly
//     (|v| <= 2^53), else a string with the exact digits ("18446744073709551615").
//   - DECIMAL: its exact text ("123.450"), as a number when it has at most 15 significant
//     digits (a double round-trips it), else as a string.
//   - FLOAT/DOUBLE: the shortest text that round-trips; NaN and ±infinity as the strings
//     "NaN", "Infinity", "-Infinity".
//   - DATE "2024-05-01"; TIMESTAMP WITH TIME ZONE "2024-05-01T12:00:00.123456Z" (UTC, whatever
//     the session time zone); TIMESTAMP (no zone) the same without "Z"; TIMESTAMP_S/_MS/_NS with
//     0/3/9 fraction digits; TIME "12:00:00.000000", TIME WITH TIME ZONE
//     "12:00:00.000000+02:00"; ±infinity as "infinity"/"-infinity".
//   - JSON: embedded as JSON (not a quoted string) — checked with simdjson first, and written
//     as a string in the unexpected case that it is not valid JSON.
//   - LIST and ARRAY: JSON arrays; STRUCT: objects; MAP: objects keyed by the key's text;
//     UNION: the value of its current member.
//   - VARCHAR and ENUM: strings. INTERVAL, UUID, BLOB, BIT, BIGNUM: DuckDB's own text
//     ("1 year 2 months 3 days 04:05:06.5", "\xAA" escapes for BLOB bytes).
// "types" holds DuckDB's type names, as typeof() spells them ("TIMESTAMP WITH TIME ZONE",
// "INTEGER[]", "STRUCT(a INTEGER)", "JSON").
//
// Concurrency: one writer per result, used by one thread.
#pragma once

#include <duckdb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::query {

// How one column (or nested field) is written; built once per result from its logical type.
struct ValueType {
  duckdb_type id = DUCKDB_TYPE_INVALID;
  std::string name;   // DuckDB's spelling: "BIGINT", "DECIMAL(18,3)", "JSON", "INTEGER[]"
  bool json = false;  // VARCHAR with the JSON alias
  uint8_t scale = 0;  // DECIMAL
  duckdb_type internal = DUCKDB_TYPE_INVALID;  // DECIMAL and ENUM storage type
  uint64_t array_size = 0;                     // ARRAY
  std::vector<std::string> enum_values;        // ENUM dictionary
  std::vector<std::string> field_names;        // STRUCT fields, UNION members
  // LIST/ARRAY: the element type. MAP: key, value. STRUCT: one per field. UNION: one per member.
  std::vector<ValueType> children;
  bool numeric = false;  // a number type (table output right-aligns these)
};

// Describes `type` (borrowed, not destroyed).
ValueType DescribeType(duckdb_logical_type type);

// Checks that text is one valid JSON value (simdjson), reusing its buffers across calls.
class JsonValidator {
 public:
  JsonValidator();
  ~JsonValidator();
  JsonValidator(const JsonValidator&) = delete;
  JsonValidator& operator=(const JsonValidator&) = delete;
  bool IsValid(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Appends row `row` of `vector`, whose type is `type`, as one JSON value.
void AppendJsonValue(const ValueType& type, duckdb_vector vector, uint64_t row,
                     JsonValidator* validator, std::string* out);

// ---- Single values, shared with the PostgreSQL engine (query/postgres_result.h) -------------
// Each appends one JSON value under the rules above.

// A number when a double holds it exactly, else a string of its digits.
void AppendJsonInteger(int64_t v, std::string* out);
// The shortest text that round-trips; "NaN", "Infinity", "-Infinity" as strings.
void AppendJsonDouble(double v, std::string* out);
void AppendJsonFloat(float v, std::string* out);
// `micros` since 1970-01-01 00:00 UTC: "2024-05-01T12:00:00.123456Z" (`utc`) or without "Z".
void AppendJsonTimestamp(int64_t micros, bool utc, std::string* out);
// `days` since 1970-01-01: "2024-05-01".
void AppendJsonDate(int32_t days, std::string* out);
// `micros` since midnight: "12:00:00.000000"; with an offset east of UTC: "…+02:00".
void AppendJsonTime(int64_t micros, std::string* out);
void AppendJsonTimeTz(int64_t micros, int32_t offset_seconds, std::string* out);
// "1 year 2 months 3 days 04:05:06.5"
void AppendJsonInterval(int32_t months, int32_t days, int64_t micros, std::string* out);
// Printable ASCII as is, other bytes as \xHH.
void AppendJsonBlob(std::string_view bytes, std::string* out);
// The document around the rows: `{"columns":[…],"types":[…],"rows":[` and
// `],"row_count":N,"elapsed_ms":x}` (elapsed rounded to microseconds).
void AppendResultHead(const std::vector<std::string>& columns,
                      const std::vector<std::string>& types, std::string* out);
void AppendResultTail(uint64_t rows, double elapsed_ms, std::string* out);

class ResultJsonWriter {
 public:
  // Reads the column names and types of `result` (borrowed; must outlive the writer) and
  // writes the head of the document.
  explicit ResultJsonWriter(duckdb_result* result);
  // Appends the rows of `chunk` (borrowed). False, with the document left unfinished, once it
  // grows past `max_bytes` (checked after each row).
  bool AppendChunk(duckdb_data_chunk chunk, size_t max_bytes = SIZE_MAX);
  uint64_t rows() const { return rows_; }
  const std::vector<ValueType>& types() const { return types_; }
  // Closes the document with row_count and elapsed_ms; the writer is spent afterwards.
  std::string Finish(double elapsed_ms);

 private:
  std::vector<ValueType> types_;
  std::string out_;
  uint64_t rows_ = 0;
  JsonValidator validator_;
};

}  // namespace sluice::query
