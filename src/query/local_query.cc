#include "query/local_query.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "duck/sandbox.h"

namespace sluice::query {
namespace {

namespace fs = std::filesystem;

Status InUse(const fs::path& dir) {
  std::string addr;
  std::ifstream f(dir / "serve.addr");
  std::getline(f, addr);
  return Status::FailedPrecondition("the data dir " + dir.string() +
                                    " is in use by a running sluice; use --server http://" +
                                    (addr.empty() ? std::string("HOST:PORT") : addr));
}

// A shared flock on DATA_DIR/LOCK, held while the query runs: `sluice serve` keeps an
// exclusive one, so it cannot start meanwhile, and holding_server() says one is running.
class SharedDirLock {
 public:
  explicit SharedDirLock(const fs::path& dir)
      : fd_(::open((dir / "LOCK").c_str(), O_RDONLY | O_CLOEXEC)) {
    held_by_server_ = fd_ >= 0 && ::flock(fd_, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  }
  ~SharedDirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  SharedDirLock(const SharedDirLock&) = delete;
  SharedDirLock& operator=(const SharedDirLock&) = delete;
  bool held_by_server() const { return held_by_server_; }

 private:
  int fd_;
  bool held_by_server_ = false;
};

}  // namespace

Result<QueryResultJson> RunLocalQuery(const LocalQuery& query) {
  // Absolute: the hot store's view names its Parquet files by absolute path, and the sandbox
  // compares paths as text.
  std::error_code ec;
  const fs::path dir = fs::absolute(query.data_dir, ec).lexically_normal();
  if (ec) return Status::InvalidArgument("--data-dir " + query.data_dir + ": " + ec.message());
  // The embedded store's hot.duckdb; with a PostgreSQL store, history.duckdb (the same views
  // over the exported Parquet; the hot rows are in PostgreSQL).
  fs::path file = dir / "hot.duckdb";
  if (!fs::exists(file, ec)) file = dir / "history.duckdb";
  if (!fs::exists(file, ec)) {
    return Status::NotFound("no hot store in " + dir.string() +
                            " (neither hot.duckdb nor history.duckdb exists); is it a sluice "
                            "--data-dir?");
  }
  SharedDirLock lock(dir);
  if (lock.held_by_server()) return InUse(dir);

  auto db = duck::Database::Open(file.string(), {{"access_mode", "READ_ONLY"}});
  if (!db.ok()) {
    const std::string& m = db.status().message();
    if (m.find("lock") != std::string::npos || m.find("Conflicting") != std::string::npos) {
      return InUse(dir);
    }
    return db.status();
  }
  {
    SLUICE_ASSIGN_OR_RETURN(auto conn, duck::Connection::Open(*db));
    SLUICE_RETURN_IF_ERROR(conn->Exec("SET GLOBAL TimeZone = 'UTC'"));
    duck::SandboxOptions sandbox;
    sandbox.allowed_directories = {
        dir.string(), query.objects_dir.empty()
                          ? (dir / "objects").string()
                          : fs::absolute(query.objects_dir, ec).lexically_normal().string()};
    sandbox.memory_limit = query.memory_limit;
    SLUICE_RETURN_IF_ERROR(duck::ApplySandbox(*conn, sandbox));
  }
  QueryOptions options = query.options;
  options.connections = 1;
  QueryEngine engine(options, *db);
  std::unique_ptr<HistoryGate> history;
  if (query.open_history) {
    SLUICE_ASSIGN_OR_RETURN(history, query.open_history());
    engine.SetHistoryGate(history.get());
  }
  SLUICE_RETURN_IF_ERROR(engine.Start());
  Result<QueryResultJson> result = engine.Execute(query.sql);
  engine.Stop();
  return result;
}

}  // namespace sluice::query
