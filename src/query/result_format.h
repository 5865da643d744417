// Text renderings of a POST /v1/query result for `sluice query --format table|csv|json`.
// They take the API's JSON document, so a result from a server and one from a local data
// dir print the same.
//
//   table: psql-style aligned columns with a header rule and a "(N rows)" footer; numbers
//          right-aligned; NULL printed as NULL; newlines and tabs shown as \n and \t; cells
//          longer than max_cell_chars characters cut with "…".
//   csv:   a header line, then one line per row, LF line ends; fields quoted per RFC 4180
//          (when they hold , " CR or LF; quotes doubled); NULL is an empty field; lists,
//          structs and JSON values are their JSON text.
//
// Concurrency: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace sluice::query {

struct TableOptions {
  size_t max_cell_chars = 60;  // in characters (UTF-8 code points), "…" included
};

// InvalidArgument when `json` is not a query result document.
Result<std::string> FormatTable(const std::string& json, const TableOptions& options = {});
Result<std::string> FormatCsv(const std::string& json);

}  // namespace sluice::query
