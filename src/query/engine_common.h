// What the SQL engines (query_engine.cc, postgres_query.cc) share besides scheduling: the
// checks on SQL text made before any database sees it, and the sentences of their refusals,
// so a client gets the same words from either engine.
//
// Concurrency: pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "query/sql_engine.h"

namespace sluice::query {

inline QueryReply Reply(QueryOutcome outcome, Result<QueryResultJson> result) {
  return {outcome, std::move(result)};
}

// The first keyword of `sql`, upper-cased, skipping blanks, comments and opening parentheses.
std::string FirstKeyword(std::string_view sql);
// Keywords that start a statement other than a read (INSERT, CREATE, SET, COPY, BEGIN, …):
// used to name what was refused.
bool IsWriteOrAdminKeyword(const std::string& word);

// InvalidArgument when `sql` is longer than `max_sql_bytes` or holds a NUL byte.
Status CheckSqlText(std::string_view sql, size_t max_sql_bytes);

// "only a single read-only SELECT is allowed; got <what>"
Status NotReadOnly(const std::string& what);
// The refusals for a result past max_rows rows or max_result_bytes of JSON (413).
Status TooManyRows(uint64_t max_rows);
Status TooManyBytes(size_t max_result_bytes);
// "query ran longer than the 300 ms limit (--query-timeout) and was stopped" (504).
Status TimedOut(std::chrono::milliseconds timeout);
// A query interrupted by Stop() (503).
Status ShuttingDown();

// "30 s", "300 ms".
std::string LimitText(std::chrono::milliseconds d);
// "256 MiB", "10000 bytes".
std::string BytesText(size_t n);
double MillisSince(std::chrono::steady_clock::time_point t0);

}  // namespace sluice::query
