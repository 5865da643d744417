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

TEST(Duck, ResultStreamReadsEveryChunkThenEnds) {
  auto db = Database::Open("", {{"threads", "2"}});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto conn = Connection::Open(*db);
  ASSERT_TRUE(conn.ok());
  auto stream = ResultStream::Open(**conn, "SELECT range AS i FROM range(10000)");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  int64_t rows = 0, sum = 0, chunks = 0;
  while (true) {
    auto chunk = (*stream)->Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (*chunk == nullptr) break;
    const idx_t n = duckdb_data_chunk_get_size(*chunk);
    ASSERT_GT(n, 0u) << "an empty chunk is the end, never handed out";
    const auto* v = static_cast<const int64_t*>(
        duckdb_vector_get_data(duckdb_data_chunk_get_vector(*chunk, 0)));
    for (idx_t i = 0; i < n; ++i) sum += v[i];
    rows += static_cast<int64_t>(n);
    ++chunks;
  }
  EXPECT_EQ(rows, 10000);
  EXPECT_EQ(sum, 10000LL * 9999 / 2);
  EXPECT_GE(chunks, 2) << "streamed in vectors, not one piece";
  auto again = (*stream)->Next();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, nullptr);
  stream->reset();
  // The connection runs statements again once the stream is gone.
  auto r = (*conn)->Query("SELECT 42");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Int64(0, 0), 42);

  auto bad = ResultStream::Open(**conn, "SELECT * FROM no_such_table");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no_such_table"), std::string::npos);
  // A failure while streaming (a cast of a row far into the result) fails the stream: at
  // Next, or at Open when DuckDB ran that far ahead.
  auto late =
      ResultStream::Open(**conn,
                         "SELECT CAST(CASE WHEN range < 5000000 THEN '1' ELSE 'x' END AS INTEGER) "
                         "FROM range(10000000)");
  Status failed = late.status();
  int64_t chunks_before = 0;
  while (failed.ok()) {
    auto chunk = (*late)->Next();
    if (!chunk.ok()) {
      failed = chunk.status();
    } else if (*chunk == nullptr) {
      break;
    } else {
      ++chunks_before;
    }
  }
  EXPECT_FALSE(failed.ok()) << "the bad row must fail the stream, after " << chunks_before
                            << " chunks";
  EXPECT_NE(failed.message().find("x"), std::string::npos) << failed.ToString();
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
