// PgResultJsonWriter: renders PostgreSQL result rows (text format, as libpq returns them) in
// the same JSON document, with the same value rules, as the DuckDB engine's ResultJsonWriter
// (query/result_json.h), so a client cannot tell which engine answered from the shape:
//   {"columns":[…],"types":[…],"rows":[[…]],"row_count":N,"elapsed_ms":x}
//
// By type OID:
//   - bool: true/false.  NULL (any type): null.
//   - int2/int4/int8/oid: a number when a double holds it exactly (|v| <= 2^53), else a string
//     of its digits.
//   - numeric: its exact text ("123.450"), a number when it has at most 15 significant digits,
//     else a string; NaN and ±Infinity as "NaN", "Infinity", "-Infinity".
//   - float4/float8: the shortest text that round-trips, NaN/±Infinity as strings.
//   - timestamptz "2024-05-01T12:00:00.123456Z" (UTC, whatever offset the server printed);
//     timestamp the same without "Z"; date "2024-05-01"; time "12:00:00.000000"; timetz
//     "12:00:00.000000+02:00"; ±infinity as "infinity"/"-infinity"; BC dates as negative
//     (astronomical) years, as DuckDB writes them.
//   - interval: DuckDB's text ("1 year 2 months 3 days 04:05:06.5").
//   - json/jsonb: embedded as JSON (checked with simdjson; a string if it is not valid JSON).
//   - bytea: DuckDB's BLOB text (printable ASCII as is, other bytes as \xHH).
//   - text, varchar, char, name, uuid, bit: strings.
//   - one- and multi-dimensional arrays of the types above: JSON arrays (nested).
//   - any other type (enums, composites, ranges, inet, …): PostgreSQL's text as a string.
// A value whose text is not in the form PostgreSQL's default settings print (a statement that
// changed DateStyle, IntervalStyle or bytea_output for itself) is written as its text, a
// string: never invalid JSON, never a guess.
// "types" uses DuckDB's names for the types above ("BIGINT", "DECIMAL(10,3)", "VARCHAR",
// "JSON", "TIMESTAMP WITH TIME ZONE", "INTEGER[]"), so tools that read one engine's answers
// read the other's; other types keep PostgreSQL's name (format_type: "inet", "mood").
//
// Concurrency: one writer per result, used by one thread.
#pragma once

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "query/result_json.h"

namespace sluice::query {

// How a value of one column is read from its text and written.
enum class PgValueKind {
  kText,  // a JSON string of the text (also every type not listed)
  kBool,
  kInteger,
  kNumeric,
  kFloat4,
  kFloat8,
  kJson,
  kTimestampTz,
  kTimestamp,
  kDate,
  kTime,
  kTimeTz,
  kInterval,
  kBytea,
  kArray,
};

struct PgColumnType {
  uint32_t oid = 0;
  std::string name;                       // as in "types"
  PgValueKind kind = PgValueKind::kText;
  PgValueKind element = PgValueKind::kText;  // kArray: the elements' kind
};

// The type of OID `oid` with modifier `typmod` (PQfmod: numeric's precision and scale), or
// nullopt for a type not listed above: name it with OtherPgType.
std::optional<PgColumnType> DescribePgType(uint32_t oid, int typmod);
// A type written as strings, named `name` (PostgreSQL's format_type).
PgColumnType OtherPgType(uint32_t oid, std::string name);

// Appends the value whose text (format 0) is `text` as one JSON value of `type`.
void AppendPgValue(const PgColumnType& type, std::string_view text, JsonValidator* validator,
                   std::string* out);

class PgResultJsonWriter {
 public:
  // Writes the head of the document; `types` has one entry per column.
  PgResultJsonWriter(const std::vector<std::string>& columns, std::vector<PgColumnType> types);
  // Appends row `row` of `res` (borrowed; text format, the columns given above). False, with
  // the document left unfinished, once it grows past `max_bytes`.
  bool AppendRow(const PGresult* res, int row, size_t max_bytes = SIZE_MAX);
  uint64_t rows() const { return rows_; }
  // Closes the document with row_count and elapsed_ms; the writer is spent afterwards.
  std::string Finish(double elapsed_ms);

 private:
  std::vector<PgColumnType> types_;
  std::string out_;
  uint64_t rows_ = 0;
  JsonValidator validator_;
};

}  // namespace sluice::query
