// The PostgreSQL test peers, for tests (header-only). scripts/test.sh starts a primary and a
// streaming replica and exports SLUICE_TEST_PG_URL and SLUICE_TEST_PG_REPLICA_URL (database
// `sluice`), and SLUICE_REQUIRE_PG=1 so that a test needing them fails rather than skips.
// Run by hand without them, such tests skip with a message naming the variable:
//
//   source scripts/pg.sh; d=$(mktemp -d); chmod 755 $d; p=$(pg_free_port)
//   pg_start_primary $d/p $p && export SLUICE_TEST_PG_URL=postgresql://postgres@127.0.0.1:$p/sluice
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "pg/pg.h"

namespace sluice::pg::testing {

inline std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// `url` with its database name replaced by `dbname` (postgresql://user@host:port/db?opts).
inline std::string WithDatabase(const std::string& url, const std::string& dbname) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + dbname;  // key=value form
  size_t slash = url.find('/', scheme + 3);
  size_t query = url.find('?', scheme + 3);
  std::string host = url.substr(0, std::min(slash, query));
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return host + "/" + dbname + rest;
}

// A fresh, empty database on the primary (visible on the replica once replayed), dropped when
// the object goes. Fails the test if it cannot be made.
class TestDatabase {
 public:
  explicit TestDatabase(const std::string& primary_url, const std::string& replica_url = "")
      : admin_url_(primary_url) {
    static std::atomic<int> counter{0};
    name_ = "sluice_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    auto admin = Connection::Open(admin_url_);
    if (!admin.ok()) {
      ADD_FAILURE() << admin.status().ToString();
      return;
    }
    Status st = (*admin)->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    if (st.ok()) st = (*admin)->Exec("CREATE DATABASE " + name_);
    if (!st.ok()) {
      ADD_FAILURE() << st.ToString();
      return;
    }
    url_ = WithDatabase(primary_url, name_);
    if (replica_url.empty()) return;
    // The replica has the database once it has replayed its creation.
    replica_url_ = WithDatabase(replica_url, name_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!Connection::Open(replica_url_).ok()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "database " << name_ << " did not reach the replica in 30 s";
        url_.clear();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~TestDatabase() {
    if (url_.empty() || std::getenv("SLUICE_KEEP_TEST_DIRS") != nullptr) return;
    auto admin = Connection::Open(admin_url_);
    if (admin.ok()) (void)(*admin)->Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  bool ok() const { return !url_.empty(); }
  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  const std::string& replica_url() const { return replica_url_; }

 private:
  std::string admin_url_, name_, url_, replica_url_;
};

}  // namespace sluice::pg::testing

// In a test body or SetUp: sets `var` (std::string) to the environment variable `env`, or skips
// the test (fails it under SLUICE_REQUIRE_PG=1) when it is unset.
#define SLUICE_PG_URL_OR_SKIP(var, env)                                                     \
  std::string var = ::sluice::pg::testing::EnvOr(env);                                     \
  if (var.empty()) {                                                                        \
    if (::sluice::pg::testing::EnvOr("SLUICE_REQUIRE_PG") == "1") {                         \
      FAIL() << env " is not set, but SLUICE_REQUIRE_PG=1: PostgreSQL tests must run";      \
    }                                                                                       \
    GTEST_SKIP() << env " is not set: start PostgreSQL with scripts/pg.sh (see pg/test_env.h)"; \
  }
