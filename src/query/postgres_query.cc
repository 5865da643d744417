#include "query/postgres_query.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <set>

#include "pg/copy.h"
#include "query/engine_common.h"
#include "query/postgres_result.h"

namespace sluice::query {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The engine's own cancel comes this long after the server's statement_timeout should have.
constexpr milliseconds kCancelGrace{500};
// After a cancel, a server that has not ended the command within this is given up on.
constexpr milliseconds kAbandonAfterCancel{5'000};
constexpr milliseconds kPollSlice{100};  // how often a wait looks at the deadline and Stop()

// The role check: one row (session user, superuser, what else makes the role unsafe: "a member
// of pg_read_server_files and allowed to execute pg_read_file", "" when nothing).
constexpr const char* kRoleCheck =
    "SELECT session_user::text, r.rolsuper, concat_ws(' and ', "
    "(SELECT 'a member of ' || string_agg(m.rolname::text, ', ' ORDER BY m.rolname) "
    "FROM pg_roles m WHERE m.oid <> r.oid AND (m.rolsuper OR m.rolname IN "
    "('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program', "
    "'pg_signal_backend')) AND pg_has_role(session_user, m.oid, 'MEMBER')), "
    "(SELECT 'allowed to execute ' || string_agg(DISTINCT p.proname::text, ', ') FROM pg_proc p "
    "WHERE p.proname IN ('pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', "
    "'lo_import', 'lo_export') AND has_function_privilege(session_user, p.oid, 'EXECUTE'))) "
    "FROM pg_roles r WHERE r.rolname = session_user";

// GET /v1/stats over events_1m (query/stats.h has the row contract). $1 the step (int8), $2 and
// $3 the bounds (timestamptz), $4 the event or NULL (text), $5 max_rows + 1 (int8). The
// bucketing is integer arithmetic on epoch microseconds (extract is exact numeric since
// PostgreSQL 14), so it is UTC whatever the time zone; the names sort by bytes ("C"), as
// DuckDB's binary collation does, whatever the database's collation.
constexpr const char* kStatsSql =
    "SELECT bucket, name, sum(count)::int8 FROM ("
    "SELECT m - ((m % $1) + $1) % $1 AS bucket, coalesce(event, '') COLLATE \"C\" AS name, count "
    "FROM (SELECT (extract(epoch FROM minute) * 1000000)::int8 AS m, event, count FROM events_1m "
    "WHERE minute >= $2 AND minute < $3 AND ($4::text IS NULL OR event = $4)) AS r) AS b "
    "GROUP BY bucket, name ORDER BY bucket, name LIMIT $5";
constexpr Oid kInt8Oid = 20, kTextOid = 25, kTimestampTzOid = 1184;
// The earliest timestamptz PostgreSQL holds (4714-11-24 BC), in its own epoch's microseconds.
constexpr int64_t kPgMinTimestamp = -211'813'488'000'000'000;

// An int8 or timestamptz parameter in binary form: 8 bytes, big-endian. Binary, because the
// bounds must be exact to the microsecond, which neither text nor float arithmetic guarantees
// over the whole range a client may ask for.
std::string BinaryInt64(int64_t v) {
  std::string out(8, '\0');
  auto u = static_cast<uint64_t>(v);
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

// A Unix-microsecond bound as a binary timestamptz. Bounds before PostgreSQL's earliest time
// become that time: no row can be earlier, so the rows selected are the same, and the server
// refuses what it cannot hold. Any later int64 fits (its range ends in 294277).
std::string BinaryTimestampTz(int64_t unix_us) {
  const int64_t pg_us = unix_us < kPgMinTimestamp + pg::kPostgresEpochUnixUs
                            ? kPgMinTimestamp
                            : unix_us - pg::kPostgresEpochUnixUs;
  return BinaryInt64(pg_us);
}

bool IsAllowedKeyword(const std::string& word) {
  static const std::set<std::string> kWords = {"SELECT", "WITH",    "VALUES",
                                               "TABLE",  "EXPLAIN", "SHOW"};
  return kWords.count(word) != 0;
}

std::string Unavailable(const Status& st) {
  return "PostgreSQL (--store-read) is unavailable, retry later: " + st.message();
}

// The sentence for a role that could leave the sandbox, or "" when it cannot.
std::string RoleProblem(const pg::Rows& rows) {
  if (rows.rows() != 1) return "its session user has no pg_roles row";
  std::string user(rows.Text(0, 0));
  std::string why;
  if (rows.Bool(0, 1)) {
    why = "it is a superuser";
  } else if (!rows.IsNull(0, 2) && !rows.Text(0, 2).empty()) {
    why = "it is " + std::string(rows.Text(0, 2));
  } else {
    return "";
  }
  return "engine \"postgres\" refuses to run queries as role \"" + user + "\": " + why +
         ", so SQL could read or write the server's files despite the read-only transaction. "
         "Connect --store-read as a login role with only SELECT on the tables (CREATE ROLE "
         "sluice_reader LOGIN PASSWORD '…'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "
         "sluice_reader), or, for development only, pass --query-allow-privileged-role";
}

std::string SqlState(const Status& st) { return std::string(pg::SqlStateOf(st)); }

// The server's own sentence in a pg::Error() status: "cannot execute … transaction".
std::string ServerMessage(const Status& st) {
  std::string m = st.message();
  if (size_t colon = m.find(": "); colon != std::string::npos) m.erase(0, colon + 2);
  if (size_t tag = m.rfind(" (SQLSTATE "); tag != std::string::npos) m.erase(tag);
  return m;
}

}  // namespace

// One query's progress against its deadline.
struct PostgresQueryEngine::Flight {
  enum class Cancel { kNone, kDeadline, kStop, kLimit };
  Steady::time_point t0;        // the query arrived at a worker
  Steady::time_point deadline;  // the engine's own cancel
  Cancel cancel = Cancel::kNone;
  Steady::time_point cancelled_at;
  bool abandoned = false;  // the server did not end the command after a cancel
};

PostgresQueryEngine::PostgresQueryEngine(PostgresQueryOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      pool_(options_.limits.connections, options_.limits.max_queued) {}

PostgresQueryEngine::~PostgresQueryEngine() { Stop(); }

Status PostgresQueryEngine::Start() {
  if (!workers_.empty()) return Status::OK();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < pool_.workers(); ++i) workers.push_back(std::make_unique<Worker>());
  // Check the role once now, so a misconfiguration stops the start rather than every query.
  Worker& first = *workers[0];
  Status st = Connect(first);
  if (st.code() == StatusCode::kInvalidArgument) {
    return st.WithContext("engine \"postgres\" (--store-read)");
  }
  if (!st.ok()) {
    spdlog::warn("engine \"postgres\": {}; queries answer 503 until it is reachable",
                 Unavailable(st));
  } else {
    auto rows = first.conn->Query(kRoleCheck);
    if (!rows.ok()) {
      spdlog::warn("engine \"postgres\": checking the role failed: {}", rows.status().ToString());
    } else if (std::string problem = RoleProblem(*rows); !problem.empty()) {
      if (!options_.allow_privileged_role) return Status::FailedPrecondition(problem);
      spdlog::warn("{} (allowed: development only)", problem);
    }
  }
  workers_ = std::move(workers);
  stopping_ = false;
  pool_.Start();
  return Status::OK();
}

void PostgresQueryEngine::Stop() {
  if (workers_.empty()) return;
  pool_.Stop([this] { stopping_ = true; });
  workers_.clear();
}

void PostgresQueryEngine::ExecuteAsync(std::string sql, QueryCallback done) {
  pool_.SubmitQuery(
      [this, sql = std::move(sql)](int worker) { return RunQuery(*workers_[worker], sql); },
      std::move(done));
}

Status PostgresQueryEngine::Connect(Worker& worker) {
  if (worker.conn && worker.conn->ok()) return Status::OK();
  worker.conn.reset();
  SLUICE_ASSIGN_OR_RETURN(worker.conn, pg::Connection::Open(options_.conninfo));
  return Status::OK();
}

QueryReply PostgresQueryEngine::RunQuery(Worker& worker, const std::string& sql) {
  const auto t0 = Steady::now();
  if (Status st = CheckSqlText(sql, options_.limits.max_sql_bytes); !st.ok()) {
    return Reply(QueryOutcome::kInvalid, std::move(st));
  }
  const std::string word = FirstKeyword(sql);
  if (word.empty()) {
    return Reply(QueryOutcome::kInvalid, Status::InvalidArgument("no SQL statement given"));
  }
  if (!IsAllowedKeyword(word)) return Reply(QueryOutcome::kInvalid, NotReadOnly(word));

  if (QueryReply begun = Begin(worker); !begun.result.ok()) return begun;
  Flight flight;
  flight.t0 = t0;
  flight.deadline = t0 + options_.limits.timeout + kCancelGrace;
  QueryReply reply = RunStatement(worker, sql, flight);
  if (flight.abandoned) {
    worker.conn.reset();  // in an unknown state: the next query opens a new one
  } else {
    EndTransaction(worker);
  }
  return reply;
}

QueryReply PostgresQueryEngine::Begin(Worker& worker) {
  const std::string setup = "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = " +
                            std::to_string(options_.limits.timeout.count()) +
                            "; SET LOCAL TimeZone = 'UTC'; " +
                            (options_.allow_privileged_role ? "SELECT 1" : kRoleCheck);
  for (int attempt = 0;; ++attempt) {
    if (Status st = Connect(worker); !st.ok()) {
      if (st.code() != StatusCode::kUnavailable) return Reply(QueryOutcome::kError, st);
      return Reply(QueryOutcome::kBusy, Status::Unavailable(Unavailable(st)));
    }
    pg::PgResultPtr res(PQexec(worker.conn->get(), setup.c_str()), &PQclear);
    if (res && PQresultStatus(res.get()) == PGRES_TUPLES_OK) {
      if (!options_.allow_privileged_role) {
        if (std::string problem = RoleProblem(pg::Rows(std::move(res))); !problem.empty()) {
          EndTransaction(worker);
          return Reply(QueryOutcome::kError, Status::FailedPrecondition(problem));
        }
      }
      return Reply(QueryOutcome::kOk, QueryResultJson{});
    }
    Status st = pg::Error("starting the read-only transaction", res.get(), worker.conn->get());
    // A connection that died while idle (server restarted) shows it here: retry on a new one.
    if (!worker.conn->ok() && attempt == 0) {
      worker.conn.reset();
      continue;
    }
    EndTransaction(worker);
    if (st.code() != StatusCode::kUnavailable) return Reply(QueryOutcome::kError, st);
    return Reply(QueryOutcome::kBusy, Status::Unavailable(Unavailable(st)));
  }
}

void PostgresQueryEngine::EndTransaction(Worker& worker) {
  if (!worker.conn) return;
  pg::PgResultPtr res(PQexec(worker.conn->get(), "ROLLBACK; SELECT pg_advisory_unlock_all()"),
                      &PQclear);
  if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK || worker.conn->InTransaction()) {
    spdlog::debug("engine \"postgres\": dropping a connection that failed its cleanup: {}",
                  pg::Error("cleanup", res.get(), worker.conn->get()).ToString());
    worker.conn.reset();
  }
}

pg::PgResultPtr PostgresQueryEngine::NextResult(Worker& worker, Flight& flight) {
  pg::Connection& conn = *worker.conn;
  PGconn* c = conn.get();
  while (PQisBusy(c)) {
    const auto now = Steady::now();
    if (flight.cancel == Flight::Cancel::kNone && (stopping_ || now >= flight.deadline)) {
      flight.cancel = stopping_ ? Flight::Cancel::kStop : Flight::Cancel::kDeadline;
      flight.cancelled_at = now;
      conn.Cancel();
    }
    if (flight.cancel != Flight::Cancel::kNone && now - flight.cancelled_at > kAbandonAfterCancel) {
      flight.abandoned = true;
      return pg::PgResultPtr(nullptr, &PQclear);
    }
    auto wait = kPollSlice;
    if (flight.cancel == Flight::Cancel::kNone) {
      wait = std::min(wait, std::chrono::ceil<milliseconds>(flight.deadline - now));
    }
    pollfd p{PQsocket(c), POLLIN, 0};
    if (p.fd < 0) break;
    (void)::poll(&p, 1, static_cast<int>(std::max<int64_t>(wait.count(), 1)));
    if (PQconsumeInput(c) == 0) break;  // the connection broke: PQgetResult reports it
  }
  return pg::PgResultPtr(PQgetResult(c), &PQclear);
}

void PostgresQueryEngine::CancelAndDrain(Worker& worker, Flight& flight) {
  if (flight.cancel == Flight::Cancel::kNone) {
    flight.cancel = Flight::Cancel::kLimit;
    flight.cancelled_at = Steady::now();
    worker.conn->Cancel();
  }
  while (NextResult(worker, flight)) {
  }
}

QueryReply PostgresQueryEngine::FromError(const Status& st, const Flight& flight) const {
  using C = Flight::Cancel;
  if (flight.cancel == C::kStop || (stopping_ && st.code() == StatusCode::kDeadlineExceeded)) {
    return Reply(QueryOutcome::kBusy, ShuttingDown());
  }
  const std::string state = SqlState(st);
  const std::string_view cls = std::string_view(state).substr(0, std::min<size_t>(2, state.size()));
  if (flight.cancel == C::kDeadline ||
      (state == "57014" && st.message().find("statement timeout") != std::string::npos)) {
    spdlog::info("engine \"postgres\": query stopped after the {} limit",
                 LimitText(options_.limits.timeout));
    return Reply(QueryOutcome::kTimeout, TimedOut(options_.limits.timeout));
  }
  if (state == "42601" && st.message().find("multiple commands") != std::string::npos) {
    return Reply(QueryOutcome::kInvalid, NotReadOnly("several statements"));
  }
  if (state == "25006") {  // read_only_sql_transaction
    return Reply(QueryOutcome::kInvalid,
                 NotReadOnly("a statement that writes (PostgreSQL: " + ServerMessage(st) + ")"));
  }
  if (state == "53200" || state == "53400" || cls == "54") {  // before class 53 below
    return Reply(QueryOutcome::kOutOfMemory, Status::ResourceExhausted(st.message()));
  }
  if (st.code() == StatusCode::kUnavailable) {
    return Reply(QueryOutcome::kBusy, Status::Unavailable(Unavailable(st)));
  }
  if (state.empty()) return Reply(QueryOutcome::kError, st);
  if (cls == "XX" || cls == "58" || state == "57014") {
    return Reply(QueryOutcome::kError, Status::Internal(st.message()));
  }
  return Reply(QueryOutcome::kInvalid, Status::InvalidArgument(st.message()));
}

QueryReply PostgresQueryEngine::RunStatement(Worker& worker, const std::string& sql,
                                             Flight& flight) {
  PGconn* c = worker.conn->get();
  // Finishes a command: the first error among its results (all of them are read).
  auto finish = [&](const char* what) -> Status {
    Status first;
    while (pg::PgResultPtr res = NextResult(worker, flight)) {
      ExecStatusType s = PQresultStatus(res.get());
      if (first.ok() && s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        first = pg::Error(what, res.get(), c);
      }
    }
    if (first.ok() && flight.abandoned) first = Status::Unavailable("no answer after a cancel");
    return first;
  };

  // Layer 2: the extended protocol parses exactly one statement (the unnamed one).
  auto prepare = [&]() -> Status {
    if (PQsendPrepare(c, "", sql.c_str(), 0, nullptr) == 0) {
      return pg::Error("the query", nullptr, c);
    }
    return finish("the query");
  };
  if (Status st = prepare(); !st.ok()) return FromError(st, flight);
  if (PQsendDescribePrepared(c, "") == 0) return FromError(pg::Error("the query", nullptr, c), flight);
  pg::PgResultPtr described(nullptr, &PQclear);
  Status st;
  while (pg::PgResultPtr res = NextResult(worker, flight)) {
    if (PQresultStatus(res.get()) == PGRES_COMMAND_OK && !described) {
      described = std::move(res);
    } else if (PQresultStatus(res.get()) != PGRES_COMMAND_OK && st.ok()) {
      st = pg::Error("the query", res.get(), c);
    }
  }
  if (!st.ok() || !described) {
    return FromError(st.ok() ? pg::Error("describing the query", nullptr, c) : st, flight);
  }

  // Column names and types; other types are named by the server (cached per connection).
  const int n = PQnfields(described.get());
  std::vector<std::string> columns;
  std::vector<PgColumnType> types;
  std::string unknown;  // "{oid,oid}"
  for (int i = 0; i < n; ++i) {
    columns.emplace_back(PQfname(described.get(), i));
    uint32_t oid = PQftype(described.get(), i);
    if (!DescribePgType(oid, PQfmod(described.get(), i)) && !worker.type_names.count(oid)) {
      unknown += (unknown.empty() ? "{" : ",") + std::to_string(oid);
    }
  }
  if (!unknown.empty()) {
    auto names = worker.conn->Query(
        "SELECT t.oid::int8, format_type(t.oid, NULL) FROM pg_type t WHERE t.oid = ANY($1::oid[])",
        {unknown + "}"});
    if (!names.ok()) return FromError(names.status(), flight);
    for (int r = 0; r < names->rows(); ++r) {
      auto oid = names->Int64(r, 0);
      if (oid.ok()) worker.type_names[static_cast<uint32_t>(*oid)] = std::string(names->Text(r, 1));
    }
    // That query took the unnamed statement's place.
    if (Status again = prepare(); !again.ok()) return FromError(again, flight);
  }
  for (int i = 0; i < n; ++i) {
    uint32_t oid = PQftype(described.get(), i);
    auto known = DescribePgType(oid, PQfmod(described.get(), i));
    if (known) {
      types.push_back(std::move(*known));
    } else {
      auto it = worker.type_names.find(oid);
      types.push_back(OtherPgType(oid, it != worker.type_names.end()
                                           ? it->second
                                           : "OID " + std::to_string(oid)));
    }
  }

  // Layer 5: stream the rows, one result per row, and stop at the limits.
  if (PQsendQueryPrepared(c, "", 0, nullptr, nullptr, nullptr, 0) == 0) {
    return FromError(pg::Error("the query", nullptr, c), flight);
  }
  if (PQsetSingleRowMode(c) == 0) {
    CancelAndDrain(worker, flight);
    return Reply(QueryOutcome::kError, Status::Internal("libpq refused single-row mode"));
  }
  PgResultJsonWriter writer(columns, std::move(types));
  while (pg::PgResultPtr res = NextResult(worker, flight)) {
    switch (PQresultStatus(res.get())) {
      case PGRES_SINGLE_TUPLE:
        if (writer.rows() >= options_.limits.max_rows) {
          CancelAndDrain(worker, flight);
          return Reply(QueryOutcome::kTooManyRows, TooManyRows(options_.limits.max_rows));
        }
        if (!writer.AppendRow(res.get(), 0, options_.limits.max_result_bytes)) {
          CancelAndDrain(worker, flight);
          return Reply(QueryOutcome::kTooManyRows, TooManyBytes(options_.limits.max_result_bytes));
        }
        break;
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
        break;  // the end of the rows (or a statement without rows)
      case PGRES_COPY_OUT:
      case PGRES_COPY_IN:
      case PGRES_COPY_BOTH:
        flight.abandoned = true;  // cannot happen past layer 2; never reuse such a connection
        return Reply(QueryOutcome::kInvalid, NotReadOnly("COPY"));
      default: {
        Status err = pg::Error("the query", res.get(), c);
        while (NextResult(worker, flight)) {
        }
        return FromError(err, flight);
      }
    }
  }
  if (flight.abandoned) {
    return FromError(Status::Unavailable("PostgreSQL did not answer after a cancel"), flight);
  }
  QueryResultJson out;
  out.row_count = writer.rows();
  out.elapsed_ms = MillisSince(flight.t0);
  out.json = writer.Finish(out.elapsed_ms);
  return Reply(QueryOutcome::kOk, std::move(out));
}

// ---- stats ---------------------------------------------------------------------------------

void PostgresQueryEngine::StatsAsync(StatsRequest request, StatsCallback done) {
  SubmitStats(
      pool_,
      [this, request = std::move(request)](int worker) {
        return RunStats(*workers_[worker], request);
      },
      std::move(done));
}

Result<std::string> PostgresQueryEngine::RunStats(Worker& worker, const StatsRequest& request) {
  const auto t0 = Steady::now();
  SLUICE_ASSIGN_OR_RETURN(const StatsPlan plan, PlanStats(request, clock_->NowMicros()));
  // Layers 1, 3 and 4: the role check, BEGIN READ ONLY and the statement timeout.
  if (QueryReply begun = Begin(worker); !begun.result.ok()) return begun.result.status();
  Flight flight;
  flight.t0 = t0;
  flight.deadline = t0 + options_.limits.timeout + kCancelGrace;

  const uint64_t limit =
      std::min<uint64_t>(options_.limits.max_rows, std::numeric_limits<int64_t>::max() - 1) + 1;
  const std::string step = BinaryInt64(plan.step_us), from = BinaryTimestampTz(plan.from_us),
                    to = BinaryTimestampTz(plan.to_us),
                    rows = BinaryInt64(static_cast<int64_t>(limit));
  const Oid types[5] = {kInt8Oid, kTimestampTzOid, kTimestampTzOid, kTextOid, kInt8Oid};
  const char* values[5] = {step.data(), from.data(), to.data(),
                           plan.event ? plan.event->data() : nullptr, rows.data()};
  const int lengths[5] = {8, 8, 8, plan.event ? static_cast<int>(plan.event->size()) : 0, 8};
  const int formats[5] = {1, 1, 1, 1, 1};  // binary; text's binary form is its bytes

  PGconn* c = worker.conn->get();
  Status st;
  pg::PgResultPtr answer(nullptr, &PQclear);
  if (PQsendQueryParams(c, kStatsSql, 5, types, values, lengths, formats, 0) == 0) {
    st = pg::Error("the stats query", nullptr, c);
  } else {
    while (pg::PgResultPtr res = NextResult(worker, flight)) {
      if (st.ok() && !answer && PQresultStatus(res.get()) == PGRES_TUPLES_OK) {
        answer = std::move(res);
      } else if (st.ok()) {
        st = pg::Error("the stats query", res.get(), c);
      }
    }
    if (st.ok() && flight.abandoned) {
      st = Status::Unavailable("PostgreSQL did not answer after a cancel");
    } else if (st.ok() && !answer) {
      st = Status::Internal("the stats query ended without a result");
    }
  }
  if (flight.abandoned) {
    worker.conn.reset();  // in an unknown state: the next request opens a new one
  } else {
    EndTransaction(worker);
  }
  if (!st.ok()) {
    if (flight.cancel == Flight::Cancel::kStop || stopping_) return StatsShuttingDown();
    QueryReply failed = FromError(st, flight);
    if (failed.outcome == QueryOutcome::kTimeout) return StatsTimedOut(options_.limits.timeout);
    return failed.result.status();
  }

  const pg::Rows result(std::move(answer));
  StatsJson json(plan, options_.limits.max_rows);
  for (int r = 0; r < result.rows(); ++r) {
    SLUICE_ASSIGN_OR_RETURN(const int64_t bucket, result.Int64(r, 0));
    SLUICE_ASSIGN_OR_RETURN(const int64_t count, result.Int64(r, 2));
    SLUICE_RETURN_IF_ERROR(json.Add(bucket, result.Text(r, 1), count));
  }
  return json.Finish();
}

}  // namespace sluice::query
