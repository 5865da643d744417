// duck_exec: runs SQL statements on a DuckDB database file with no sandbox, for the bench
// scripts: bench/queries.sh streams a stopped data dir's `events` view into PostgreSQL with
// `COPY (SELECT …) TO '/dev/stdout' (FORMAT csv, USE_TMP_FILE false)`, so no temporary file of
// the whole data set is written. Not linked into `sluice`: it can read and write whatever the
// user running it can, which the query sandbox exists to prevent.
//
// Usage: duck_exec [--read-only] DB_FILE SQL...
// The statements run in order on one connection whose time zone is UTC; what a SELECT returns
// is discarded (use COPY … TO '/dev/stdout'). Exit 0 when every statement ran, 1 with DuckDB's
// message on stderr at the first that failed, 2 on bad usage.
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "duck/duck.h"

namespace {

int Run(int argc, char** argv) {
  int arg = 1;
  std::vector<std::pair<std::string, std::string>> config;
  if (arg < argc && std::strcmp(argv[arg], "--read-only") == 0) {
    config.emplace_back("access_mode", "READ_ONLY");
    ++arg;
  }
  if (argc - arg < 2) {
    std::fprintf(stderr, "usage: duck_exec [--read-only] DB_FILE SQL...\n");
    return 2;
  }
  auto fail = [](const sluice::Status& s) {
    std::fprintf(stderr, "duck_exec: %s\n", s.message().c_str());
    return 1;
  };
  auto db = sluice::duck::Database::Open(argv[arg++], config);
  if (!db.ok()) return fail(db.status());
  auto conn = sluice::duck::Connection::Open(*db);
  if (!conn.ok()) return fail(conn.status());
  if (auto s = (*conn)->Exec("SET TimeZone = 'UTC'"); !s.ok()) return fail(s);
  for (; arg < argc; ++arg) {
    if (auto s = (*conn)->Exec(argv[arg]); !s.ok()) return fail(s);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
