#include "query/local_query.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "query/test_db.h"

namespace sluice::query {
namespace {

class LocalQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::MakeTestDb();
    db_->db.reset();  // closed, as when no server runs
    q_.data_dir = db_->dir.string();
  }
  std::unique_ptr<testing::TestDb> db_;
  LocalQuery q_;
};

TEST_F(LocalQueryTest, RunsReadOnlyInTheSandbox) {
  q_.sql = "SELECT event, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL";
  auto r = RunLocalQuery(q_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->json.find(R"j("rows":[["Purchase",1],["Signup",1],[null,1]])j"), std::string::npos)
      << r->json;
  // UTC for the session, whatever the database was created with.
  q_.sql = "SELECT current_setting('TimeZone')";
  r = RunLocalQuery(q_);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->json.find(R"j([["UTC"]])j"), std::string::npos) << r->json;

  q_.sql = "SELECT * FROM read_csv('/etc/passwd')";
  EXPECT_NE(RunLocalQuery(q_).status().message().find("Permission Error"), std::string::npos);
  q_.sql = "DELETE FROM events_1m";
  EXPECT_EQ(RunLocalQuery(q_).status().message(),
            "only a single read-only SELECT is allowed; got DELETE");
  q_.sql = "SELECT count(*) FROM events_1m";
  r = RunLocalQuery(q_);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->json.find("[[6]]"), std::string::npos);
  q_.options.max_rows = 2;
  q_.sql = "SELECT * FROM events";
  EXPECT_NE(RunLocalQuery(q_).status().message().find("more than 2 rows"), std::string::npos);
}

TEST_F(LocalQueryTest, ARelativeDataDirStillReadsItsParquetFiles) {
  const std::string parquet = (db_->dir / "objects" / "x.parquet").string();
  std::filesystem::create_directories(db_->dir / "objects");
  {
    auto db = duck::Database::Open(":memory:");
    ASSERT_TRUE(db.ok());
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Exec("COPY (SELECT 7 AS n) TO '" + parquet + "' (FORMAT parquet)").ok());
  }
  q_.data_dir = std::filesystem::relative(db_->dir).string();
  ASSERT_FALSE(std::filesystem::path(q_.data_dir).is_absolute());
  q_.sql = "SELECT n FROM read_parquet('" + parquet + "')";
  auto r = RunLocalQuery(q_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->json.find("[[7]]"), std::string::npos) << r->json;
}

TEST_F(LocalQueryTest, SaysWhenAServerHoldsTheDataDir) {
  int fd = ::open((db_->dir / "LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  // flock locks belong to the open file description: a second open() in this process
  // conflicts like another process would.
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  std::ofstream(db_->dir / "serve.addr") << "127.0.0.1:18080\n";
  q_.sql = "SELECT 1";
  auto r = RunLocalQuery(q_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "the data dir " + db_->dir.string() +
                                      " is in use by a running sluice; use --server "
                                      "http://127.0.0.1:18080");
  ::close(fd);
  EXPECT_TRUE(RunLocalQuery(q_).ok());
}

TEST_F(LocalQueryTest, NoHotStore) {
  q_.data_dir = (db_->dir / "nope").string();
  q_.sql = "SELECT 1";
  EXPECT_EQ(RunLocalQuery(q_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RunLocalQuery(q_).status().message(),
            "no hot store in " + q_.data_dir +
                " (neither hot.duckdb nor history.duckdb exists); is it a sluice --data-dir?");
}

// A data dir of a PostgreSQL store has history.duckdb (the views over the exported Parquet)
// instead of hot.duckdb.
TEST_F(LocalQueryTest, APostgresStoreDataDirIsReadThroughItsHistoryDatabase) {
  std::filesystem::rename(db_->dir / "hot.duckdb", db_->dir / "history.duckdb");
  q_.sql = "SELECT count(*) FROM events";
  auto r = RunLocalQuery(q_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->json.find("[[3]]"), std::string::npos) << r->json;
}

}  // namespace
}  // namespace sluice::query
