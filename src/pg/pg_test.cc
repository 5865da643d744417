// libpq adapters against a real PostgreSQL (SLUICE_TEST_PG_URL): connecting, errors with their
// SQLSTATE, binary COPY both ways, broken and cancelled connections.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pg/copy.h"
#include "pg/pg.h"
#include "pg/test_env.h"

namespace sluice::pg {
namespace {

using testing::TestDatabase;

class PgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_PG_URL_OR_SKIP(url, "SLUICE_TEST_PG_URL");
    db_ = std::make_unique<TestDatabase>(url);
    ASSERT_TRUE(db_->ok());
    conn_ = Open();
    ASSERT_TRUE(conn_);
  }

  std::unique_ptr<Connection> Open() {
    auto c = Connection::Open(db_->url());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::string Text(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() > 0 ? std::string(r->Text(0, 0)) : "<none>";
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(PgTest, ConnectErrorsSayWhatFailed) {
  auto refused = Connection::Open("postgresql://postgres@127.0.0.1:1/sluice?connect_timeout=2");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("127.0.0.1"), std::string::npos)
      << refused.status().ToString();
  auto bad = Connection::Open("postgresql://[::1");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  auto nodb = Connection::Open(testing::WithDatabase(db_->url(), "no_such_database"));
  EXPECT_FALSE(nodb.ok());
  EXPECT_NE(nodb.status().message().find("no_such_database"), std::string::npos);
}

TEST_F(PgTest, QueriesWithParametersAndUtcTimes) {
  auto r = conn_->Query("SELECT $1::int8 + 1, $2::text, $3::text IS NULL, true, "
                        "'2024-05-01 14:00:00+02'::timestamptz::text",
                        {"41", "hé", std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rows(), 1);
  EXPECT_EQ(r->columns(), 5);
  EXPECT_EQ(*r->Int64(0, 0), 42);
  EXPECT_EQ(r->Text(0, 1), "hé");
  EXPECT_TRUE(r->Bool(0, 2));
  EXPECT_EQ(r->Text(0, 4), "2024-05-01 12:00:00+00");  // the session is in UTC
  EXPECT_EQ(r->Int64(0, 1).status().code(), StatusCode::kInternal);
  ASSERT_TRUE(conn_->Exec("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2), (3)").ok());
  auto del = conn_->Query("DELETE FROM t WHERE a > 1");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->Affected(), 2u);
}

TEST_F(PgTest, ErrorsCarryTheServersMessageAndSqlState) {
  Status syntax = conn_->Exec("SELEC 1");
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(syntax), "42601");
  EXPECT_NE(syntax.message().find("syntax error"), std::string::npos) << syntax.ToString();

  ASSERT_TRUE(conn_->Exec("CREATE TABLE u (k int PRIMARY KEY); INSERT INTO u VALUES (1)").ok());
  Status dup = conn_->Exec("INSERT INTO u VALUES (1)");
  EXPECT_EQ(dup.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(SqlStateOf(dup), "23505");
  EXPECT_NE(dup.message().find("duplicate key"), std::string::npos);

  auto missing = conn_->Query("SELECT * FROM nope WHERE x = $1", {"1"});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(missing.status()), "42P01");
  EXPECT_EQ(SqlStateOf(Status::IOError("disk")), "");
  // The connection is still usable after errors.
  EXPECT_EQ(Text("SELECT 7"), "7");
}

TEST_F(PgTest, BinaryCopyRoundTripsEveryType) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE c (id int8, name text, payload json, doc jsonb, "
                          "at timestamptz, flag bool)")
                  .ok());
  constexpr int kRows = 20'000;  // several 1 MiB flushes
  const int64_t t0 = 1714564800LL * 1'000'000;
  {
    auto in = CopyIn::Start(*conn_, "COPY c FROM STDIN (FORMAT binary)");
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    for (int i = 0; i < kRows; ++i) {
      CopyEncoder& e = (*in)->encoder();
      e.BeginRow(6);
      e.AddInt64(i);
      if (i == 1) {
        e.AddNull();
      } else {
        e.AddText("name-" + std::to_string(i) + "-é");
      }
      e.AddText(R"({"b": 2, "a": [1, "x"]})");
      e.AddJsonb(R"({"b": 2, "a": [1, "x"], "i": )" + std::to_string(i) + "}");
      e.AddTimestamp(t0 + i);
      e.AddBool(i % 2 == 0);
      ASSERT_TRUE((*in)->MaybeFlush().ok());
    }
    auto rows = (*in)->Finish();
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(*rows, uint64_t{kRows});
  }
  // What the server made of it.
  EXPECT_EQ(Text("SELECT count(*) FROM c"), std::to_string(kRows));
  EXPECT_EQ(Text("SELECT at::text FROM c WHERE id = 5"), "2024-05-01 12:00:00.000005+00");
  EXPECT_EQ(Text("SELECT payload::text FROM c WHERE id = 5"), R"({"b": 2, "a": [1, "x"]})");
  EXPECT_EQ(Text("SELECT doc->>'i' FROM c WHERE id = 5"), "5");
  EXPECT_EQ(Text("SELECT doc::text FROM c WHERE id = 5"), R"({"a": [1, "x"], "b": 2, "i": 5})");
  EXPECT_EQ(Text("SELECT name FROM c WHERE id = 7"), "name-7-é");
  EXPECT_EQ(Text("SELECT name IS NULL FROM c WHERE id = 1"), "t");
  EXPECT_EQ(Text("SELECT count(*) FROM c WHERE flag"), std::to_string(kRows / 2));

  // And back out, in order, one row at a time.
  auto out = CopyOut::Start(*conn_, "COPY (SELECT id, name, payload, doc, at, flag FROM c "
                                    "ORDER BY id) TO STDOUT (FORMAT binary)");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  CopyRow row;
  int n = 0;
  while (true) {
    auto got = (*out)->Next(&row);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (!*got) break;
    ASSERT_EQ(row.fields.size(), 6u);
    EXPECT_EQ(*DecodeInt64(*row.fields[0]), n);
    if (n == 1) {
      EXPECT_FALSE(row.fields[1]);
    } else {
      EXPECT_EQ(*row.fields[1], "name-" + std::to_string(n) + "-é");
    }
    EXPECT_EQ(*row.fields[2], R"({"b": 2, "a": [1, "x"]})");  // json keeps the text
    EXPECT_EQ(*DecodeJsonb(*row.fields[3]),
              R"({"a": [1, "x"], "b": 2, "i": )" + std::to_string(n) + "}");
    EXPECT_EQ(*DecodeTimestamp(*row.fields[4]), t0 + n);
    EXPECT_EQ(*DecodeBool(*row.fields[5]), n % 2 == 0);
    ++n;
  }
  EXPECT_EQ(n, kRows);
  EXPECT_FALSE(*(*out)->Next(&row));  // stays at the end
  EXPECT_EQ(Text("SELECT 1"), "1");   // the connection is free again
}

TEST_F(PgTest, ARefusedCopyReportsTheRowAndLeavesTheConnectionUsable) {
  ASSERT_TRUE(conn_->Exec("CREATE TABLE j (doc json)").ok());
  ASSERT_TRUE(conn_->Exec("BEGIN").ok());
  auto in = CopyIn::Start(*conn_, "COPY j FROM STDIN (FORMAT binary)");
  ASSERT_TRUE(in.ok());
  (*in)->encoder().BeginRow(1);
  (*in)->encoder().AddText("{\"ok\":1}");
  (*in)->encoder().BeginRow(1);
  (*in)->encoder().AddText("{not json");
  auto rows = (*in)->Finish();
  EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(rows.status()), "22P02");
  EXPECT_NE(rows.status().message().find("json"), std::string::npos) << rows.status().ToString();
  EXPECT_TRUE(conn_->InTransaction());
  ASSERT_TRUE(conn_->Exec("ROLLBACK").ok());
  EXPECT_EQ(Text("SELECT count(*) FROM j"), "0");

  // A COPY abandoned by the client (destroyed unfinished) stores nothing either.
  {
    auto in2 = CopyIn::Start(*conn_, "COPY j FROM STDIN (FORMAT binary)");
    ASSERT_TRUE(in2.ok());
    (*in2)->encoder().BeginRow(1);
    (*in2)->encoder().AddText("{}");
    ASSERT_TRUE((*in2)->MaybeFlush().ok());
  }
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(Text("SELECT count(*) FROM j"), "0");
}

TEST_F(PgTest, AnAbandonedCopyOutFreesTheConnection) {
  {
    auto out = CopyOut::Start(
        *conn_, "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 1000000) g) TO "
                "STDOUT (FORMAT binary)");
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    CopyRow row;
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(*(*out)->Next(&row));
  }
  EXPECT_EQ(Text("SELECT 'usable'"), "usable");
  auto bad = CopyOut::Start(*conn_, "COPY (SELECT 1/0) TO STDOUT (FORMAT binary)");
  if (bad.ok()) {  // the error may come with the first row rather than at the start
    CopyRow row;
    EXPECT_FALSE((*bad)->Next(&row).ok());
  } else {
    EXPECT_EQ(SqlStateOf(bad.status()), "22012");
  }
  EXPECT_EQ(Text("SELECT 'still usable'"), "still usable");
}

TEST_F(PgTest, ABrokenConnectionIsUnavailableAndNotOk) {
  auto other = Open();
  ASSERT_TRUE(other);
  const std::string pid = Text("SELECT pg_backend_pid()");
  ASSERT_TRUE(other->Exec("SELECT pg_terminate_backend(" + pid + ")").ok());
  Status st;
  // The termination is asynchronous: the first statement after it fails.
  for (int i = 0; i < 50 && st.ok(); ++i) {
    st = conn_->Exec("SELECT 1");
    if (st.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_FALSE(conn_->ok());
}

TEST_F(PgTest, CancelStopsARunningStatement) {
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    conn_->Cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  Status st = conn_->Exec("SELECT pg_sleep(30)");
  canceller.join();
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.ToString();
  EXPECT_EQ(SqlStateOf(st), "57014");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_TRUE(conn_->ok());
}

}  // namespace
}  // namespace sluice::pg
