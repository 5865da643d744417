// Adapters for libpq: RAII owners of PGconn and PGresult, and translation of PostgreSQL errors
// into Status carrying the server's message and SQLSTATE. Every component that talks to
// PostgreSQL (store/, query/) goes through these; binary COPY is in pg/copy.h.
//
// Errors: "PostgreSQL error in <what>: <server message> (SQLSTATE 23514)". The code says what
// a caller can do about it:
//   Unavailable         connection lost or refused, server shutting down or out of resources
//                       (classes 08, 53, 57P01-57P03, 58), serialization failure or deadlock
//                       (40001, 40P01), lock not available: retry later, on a new connection
//                       if ok() is false;
//   DeadlineExceeded    statement_timeout or a cancel (57014);
//   InvalidArgument     the SQL or the data is wrong (classes 22, 42);
//   FailedPrecondition  a constraint or the database's state refuses it (class 23, 25, 55);
//   Internal            anything else.
//
// Concurrency: a Connection is used by one thread at a time (libpq's rule), except Cancel(),
// which any thread may call. Rows are immutable values.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::pg {

using PgResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

// The Status for a failed command: `res` may be null (libpq could not even send it), then the
// connection's error message is used.
Status Error(std::string_view what, const PGresult* res, const PGconn* conn);
// The SQLSTATE a Status made by Error() carries ("" when none): "23514".
std::string_view SqlStateOf(const Status& status);

// A finished query's result (text format): rows of nullable text cells.
class Rows {
 public:
  Rows() : res_(nullptr, &PQclear) {}
  explicit Rows(PgResultPtr res) : res_(std::move(res)) {}
  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view Text(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  // The cell as an integer; 0 for NULL. Internal when it is not one (a programmer error in the
  // query, reported rather than crashing).
  Result<int64_t> Int64(int row, int col) const;
  bool Bool(int row, int col) const { return Text(row, col) == "t"; }
  // The number of rows an INSERT/UPDATE/DELETE/COPY affected (PQcmdTuples).
  uint64_t Affected() const;

 private:
  PgResultPtr res_;
};

class Connection {
 public:
  // Connects with `conninfo` (a postgresql:// URL or key=value pairs; its settings win over
  // the defaults: application_name=sluice, connect_timeout=10 s, TCP keepalives), and sets
  // TimeZone UTC. Unavailable with libpq's message when the server cannot be reached;
  // InvalidArgument when `conninfo` cannot be parsed.
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo);
  ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // False once the connection is broken (server gone, restarted, network): open a new one.
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  // ok(), after reading what the server sent while the connection sat idle: a restart's
  // termination message or EOF marks it broken now rather than on the next statement.
  bool Alive();
  // True inside a transaction block (also a failed one), false when idle.
  bool InTransaction() const;

  // Runs `sql` (one or more statements, no parameters) and discards what it returns.
  Status Exec(std::string_view sql);
  // Runs one statement with text parameters ($1, $2, …; std::nullopt is NULL) and returns its
  // rows.
  Result<Rows> Query(std::string_view sql,
                     const std::vector<std::optional<std::string>>& params = {});

  // Asks the server to cancel the statement running on this connection (any thread). The
  // statement then fails with DeadlineExceeded (57014).
  void Cancel();

  PGconn* get() const { return conn_.get(); }

 private:
  explicit Connection(PGconn* conn) : conn_(conn, &PQfinish) {}
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
  // Made once at connect: PQgetCancel may not run beside a statement, PQcancel may.
  std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> cancel_{nullptr, &PQfreeCancel};
};

}  // namespace sluice::pg
