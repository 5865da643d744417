// EventsRangeOf: which interval of `received_at` a SQL statement can read from the `events`
// view, so that the query engine fetches into its local cache only the history files (one per
// 10-minute window of received_at) that the statement can need.
//
// Guarantee: the answer is a SOUND OVER-APPROXIMATION. Every row of `events` that can affect the
// statement's result has from_us <= received_at < to_us; the range may be wider than needed,
// never narrower. Whatever cannot be analysed widens the answer (to unbounded, or to "reads
// events" for text that does not parse), it never fails it.
//
// How: DuckDB's json_serialize_sql() gives the parsed statement. Every base-table reference to
// `events` anywhere in it (FROM, subqueries, CTEs, set operations, joins) must be bounded, or
// the answer is unbounded. A reference is bounded only when it sits directly in the FROM of a
// SELECT (possibly through inner/outer/cross joins), and then only by the top-level AND
// conjuncts of that SELECT's WHERE that compare its received_at with a constant expression
// (>, >=, <, <=, =, BETWEEN, IN; constants, casts, operators, CASE and scalar functions, with
// no column, subquery or parameter). Those are evaluated on `conn` itself, so the session's
// time zone applies exactly as in the statement. The answer is the hull of all references'
// ranges. EXPLAIN [ANALYZE] reads what the statement it explains reads.
//
// Time: an expression that moves with the clock (now(), current_date, date_trunc('day',
// now()), …) is evaluated at the current time and as if 10 minutes later; a lower bound takes
// the smaller value, an upper bound the larger of the later value and the current one plus 10
// minutes. The statement must therefore start within 10 minutes of this call (or in the same
// transaction, where now() does not move). Keywords such as current_date count only when no
// column of that name can be in scope.
//
// Cost: one statement on `conn` to parse, then two or three small ones per bound found.
//
// Concurrency: a function; it runs statements on `conn`, which the caller must not use from
// another thread meanwhile. It neither begins nor ends a transaction, and it evaluates the
// statement's constant expressions under try(), so an error in one does not abort a
// transaction the caller holds open. conn.Interrupt() cancels it (Unavailable).
//
// Limits: bounds are found only in the forms above; OR, NOT, HAVING, JOIN conditions, bounds on
// expressions of received_at (received_at::DATE = …) and bounds in an enclosing query are
// ignored, which widens the answer. TABLESAMPLE / USING SAMPLE, ASOF, POSITIONAL, SEMI and ANTI
// joins, and renamed columns (events AS e(a, b, …)) leave the affected reference unbounded.
// Dynamic SQL (query('…'), query_table('…'), json_execute_serialized_sql) and any table
// function not known to read no table (DuckDB's table macros, e.g. histogram(events, col),
// read their argument) read all of events. Text that does not serialize
// (syntax errors, DESCRIBE, SUMMARIZE, …) reads all of events when it contains the word
// `events` (or `query`/`query_table`), nothing otherwise. Other views defined over `events`
// are not followed.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "duck/duck.h"

namespace sluice::query {

struct EventsRange {
  bool reads_events = false;    // false: the statement never names `events` (no history needed)
  int64_t from_us = INT64_MIN;  // inclusive lower bound on received_at, µs since the Unix epoch
  int64_t to_us = INT64_MAX;    // exclusive upper bound
  bool bounded() const { return from_us != INT64_MIN || to_us != INT64_MAX; }
};

// The received_at range `sql` can read from `events` (see above). When reads_events is false,
// the range is unbounded and meaningless. An empty range (from_us >= to_us) means the WHERE
// clauses exclude every row.
//
// Errors only for failures of DuckDB itself: the connection is broken, its transaction is
// already aborted, or the call was interrupted (Unavailable). A statement that does not parse,
// or that would fail to bind, gives a conservative answer, not an error.
Result<EventsRange> EventsRangeOf(duck::Connection& conn, const std::string& sql);

}  // namespace sluice::query
