#include "duck/duck.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::duck {
namespace {

TEST(Duck, QueryAppendAndErrors) {
  auto db = Database::Open("", {{"threads", "2"}});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto conn = Connection::Open(*db);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE t (a BIGINT, s VARCHAR)").ok());
  {
    auto app = Appender::Open(**conn, "t");
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(duckdb_append_int64((*app)->get(), i), DuckDBSuccess);
      ASSERT_EQ(duckdb_append_varchar((*app)->get(), "it's"), DuckDBSuccess);
      ASSERT_EQ(duckdb_appender_end_row((*app)->get()), DuckDBSuccess);
    }
    ASSERT_TRUE((*app)->Flush().ok());
  }
  auto r = (*conn)->Query("SELECT count(*), max(s) FROM t WHERE s = " + QuoteLiteral("it's"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Int64(0, 0), 3);
  EXPECT_EQ(r->String(1, 0), "it's");
  EXPECT_EQ(r->ColumnName(0), "count_star()");

  auto bad = (*conn)->Query("SELECT * FROM no_such_table");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no_such_table"), std::string::npos);
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_FALSE(Appender::Open(**conn, "missing").ok());
}

TEST(Duck, InterruptStopsARunningQuery) {
  auto db = Database::Open("");
  ASSERT_TRUE(db.ok());
  auto conn = Connection::Open(*db);
  ASSERT_TRUE(conn.ok());
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*conn)->Interrupt();
  });
  auto r = (*conn)->Query("SELECT count(*) FROM range(10000000000) a, range(1000) b");
  killer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
}

TEST(Duck, OpenFailureIsAStatus) {
  auto db = Database::Open("/nonexistent-dir/x/y.duckdb");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("/nonexistent-dir/x/y.duckdb"), std::string::npos);
}

}  // namespace
}  // namespace sluice::duck
