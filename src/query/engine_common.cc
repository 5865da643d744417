#include "query/engine_common.h"

#include <cctype>
#include <future>
#include <set>

namespace sluice::query {

std::string_view OutcomeName(QueryOutcome outcome) {
  switch (outcome) {
    case QueryOutcome::kOk:
      return "ok";
    case QueryOutcome::kInvalid:
      return "invalid";
    case QueryOutcome::kTimeout:
      return "timeout";
    case QueryOutcome::kTooManyRows:
      return "too_many_rows";
    case QueryOutcome::kOutOfMemory:
      return "out_of_memory";
    case QueryOutcome::kBusy:
      return "busy";
    case QueryOutcome::kError:
      return "error";
  }
  return "error";
}

int HttpStatusFor(QueryOutcome outcome) {
  switch (outcome) {
    case QueryOutcome::kOk:
      return 200;
    case QueryOutcome::kInvalid:
      return 400;
    case QueryOutcome::kTimeout:
      return 504;
    case QueryOutcome::kTooManyRows:
    case QueryOutcome::kOutOfMemory:
      return 413;
    case QueryOutcome::kBusy:
      return 503;
    case QueryOutcome::kError:
      return 500;
  }
  return 500;
}

Result<QueryResultJson> SqlEngine::Execute(const std::string& sql) {
  std::promise<QueryReply> promise;
  auto future = promise.get_future();
  ExecuteAsync(sql, [&promise](QueryReply r) { promise.set_value(std::move(r)); });
  return future.get().result;
}

std::string FirstKeyword(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      size_t nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (sql.substr(i, 2) == "/*") {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  std::string word;
  while (i < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i])) || sql[i] == '_')) {
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    ++i;
  }
  return word;
}

bool IsWriteOrAdminKeyword(const std::string& word) {
  static const std::set<std::string> kWords = {
      "INSERT",     "UPDATE", "DELETE",   "CREATE",     "DROP",    "ALTER",   "COPY",
      "ATTACH",     "DETACH", "INSTALL",  "LOAD",       "FORCE",   "SET",     "RESET",
      "CALL",       "EXPORT", "IMPORT",   "CHECKPOINT", "VACUUM",  "ANALYZE", "BEGIN",
      "START",      "COMMIT", "END",      "ROLLBACK",   "ABORT",   "PREPARE", "EXECUTE",
      "DEALLOCATE", "USE",    "TRUNCATE", "MERGE",      "COMMENT", "UPSERT"};
  return kWords.count(word) != 0;
}

Status CheckSqlText(std::string_view sql, size_t max_sql_bytes) {
  if (sql.size() > max_sql_bytes) {
    return Status::InvalidArgument("the SQL is " + std::to_string(sql.size()) +
                                   " bytes, more than the limit of " +
                                   std::to_string(max_sql_bytes) + " bytes");
  }
  if (sql.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("the SQL contains a NUL byte");
  }
  return Status::OK();
}

Status NotReadOnly(const std::string& what) {
  return Status::InvalidArgument("only a single read-only SELECT is allowed; got " + what);
}

Status TooManyRows(uint64_t max_rows) {
  return Status::InvalidArgument("the result has more than " + std::to_string(max_rows) +
                                 " rows (--query-max-rows); add a LIMIT or aggregate");
}

Status TooManyBytes(size_t max_result_bytes) {
  return Status::InvalidArgument("the result is larger than the limit of " +
                                 BytesText(max_result_bytes) +
                                 " of JSON; select fewer rows or columns, or aggregate");
}

Status TimedOut(std::chrono::milliseconds timeout) {
  return Status::DeadlineExceeded("query ran longer than the " + LimitText(timeout) +
                                  " limit (--query-timeout) and was stopped");
}

Status ShuttingDown() {
  return Status::Unavailable(
      "the query was interrupted because the query engine is shutting down");
}

std::string LimitText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string BytesText(size_t n) {
  if (n >= (size_t{1} << 20) && n % (size_t{1} << 20) == 0) {
    return std::to_string(n >> 20) + " MiB";
  }
  return std::to_string(n) + " bytes";
}

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace sluice::query
