#include "pg/pg.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <utility>

namespace sluice::pg {
namespace {

StatusCode CodeForSqlState(std::string_view state, bool connection_ok) {
  if (!connection_ok || state.empty()) {
    // No SQLSTATE: libpq itself failed (connection lost, out of memory, protocol).
    return connection_ok ? StatusCode::kInternal : StatusCode::kUnavailable;
  }
  const std::string_view cls = state.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "58" || state == "57P01" || state == "57P02" ||
      state == "57P03" || state == "40001" || state == "40P01" || state == "55P03") {
    return StatusCode::kUnavailable;
  }
  if (state == "57014") return StatusCode::kDeadlineExceeded;
  if (cls == "22" || cls == "42") return StatusCode::kInvalidArgument;
  if (cls == "23" || cls == "25" || cls == "55") return StatusCode::kFailedPrecondition;
  return StatusCode::kInternal;
}

std::string_view Trimmed(const char* s) {
  std::string_view v = s != nullptr ? s : "";
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return v;
}

void LogNotice(void*, const char* message) { spdlog::debug("postgresql: {}", Trimmed(message)); }

}  // namespace

Status Error(std::string_view what, const PGresult* res, const PGconn* conn) {
  std::string_view message;
  std::string_view state;
  if (res != nullptr) {
    message = Trimmed(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    state = Trimmed(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (message.empty()) message = Trimmed(PQresultErrorMessage(res));
  }
  if (message.empty() && conn != nullptr) message = Trimmed(PQerrorMessage(conn));
  if (message.empty()) message = "unknown error";
  const bool connection_ok = conn == nullptr || PQstatus(conn) == CONNECTION_OK;
  std::string m = "PostgreSQL error in " + std::string(what) + ": " + std::string(message);
  if (!state.empty()) m += " (SQLSTATE " + std::string(state) + ")";
  return Status(CodeForSqlState(state, connection_ok), std::move(m));
}

std::string_view SqlStateOf(const Status& status) {
  std::string_view m = status.message();
  constexpr std::string_view kTag = "(SQLSTATE ";
  size_t at = m.rfind(kTag);
  if (at == std::string_view::npos || m.size() < at + kTag.size() + 6 || m.back() != ')') {
    return {};
  }
  return m.substr(at + kTag.size(), 5);
}

Result<int64_t> Rows::Int64(int row, int col) const {
  if (IsNull(row, col)) return int64_t{0};
  std::string_view t = Text(row, col);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size()) {
    return Status::Internal("PostgreSQL returned \"" + std::string(t) + "\" where an integer was "
                            "expected (row " + std::to_string(row) + ", column " +
                            std::to_string(col) + ")");
  }
  return v;
}

uint64_t Rows::Affected() const {
  if (!res_) return 0;
  std::string_view t = PQcmdTuples(res_.get());
  uint64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string m = parse_error != nullptr ? std::string(Trimmed(parse_error)) : "out of memory";
    PQfreemem(parse_error);
    return Status::InvalidArgument("cannot parse the PostgreSQL connection string: " + m);
  }
  PQconninfoFree(parsed);
  // Defaults first: with expand_dbname, the settings in `conninfo` (the "dbname" entry) win.
  const char* keywords[] = {"application_name", "connect_timeout", "keepalives_idle",
                            "keepalives_interval", "keepalives_count", "dbname", nullptr};
  const char* values[] = {"sluice", "10", "30", "10", "3", conninfo.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (raw == nullptr) return Status::Unavailable("libpq could not allocate a connection");
  std::unique_ptr<Connection> conn(new Connection(raw));
  if (PQstatus(raw) != CONNECTION_OK) {
    return Status::Unavailable("cannot connect to PostgreSQL: " +
                               std::string(Trimmed(PQerrorMessage(raw))));
  }
  PQsetNoticeProcessor(raw, &LogNotice, nullptr);
  conn->cancel_.reset(PQgetCancel(raw));
  SLUICE_RETURN_IF_ERROR(conn->Exec("SET TimeZone = 'UTC'"));
  return conn;
}

bool Connection::Alive() {
  // A terminated session's server sends an error and then closes: the first read takes the
  // error (parsed by PQisBusy), the second sees EOF, which marks the connection bad.
  for (int i = 0; i < 2 && ok(); ++i) {
    if (PQconsumeInput(conn_.get()) == 0) return false;
    (void)PQisBusy(conn_.get());
  }
  return ok();
}

bool Connection::InTransaction() const {
  PGTransactionStatusType s = PQtransactionStatus(conn_.get());
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

Status Connection::Exec(std::string_view sql) {
  PgResultPtr res(PQexec(conn_.get(), std::string(sql).c_str()), &PQclear);
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    return Status::OK();
  }
  return Error(sql.substr(0, 120), res.get(), conn_.get());
}

Result<Rows> Connection::Query(std::string_view sql,
                               const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResultPtr res(PQexecParams(conn_.get(), std::string(sql).c_str(),
                               static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                               nullptr, /*resultFormat=*/0),
                  &PQclear);
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(std::move(res));
  return Error(sql.substr(0, 120), res.get(), conn_.get());
}

void Connection::Cancel() {
  if (!cancel_) return;
  char err[256];
  if (PQcancel(cancel_.get(), err, sizeof err) == 0) {
    spdlog::warn("postgresql: cancel request failed: {}", Trimmed(err));
  }
}

}  // namespace sluice::pg
