#include "query/query_engine.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/clock.h"
#include "common/metrics.h"
#include "query/test_db.h"

namespace sluice::query {
namespace {

using std::chrono::milliseconds;

// The document without its elapsed_ms, which varies.
std::string WithoutElapsed(const std::string& json) {
  size_t p = json.find(",\"elapsed_ms\":");
  return p == std::string::npos ? json : json.substr(0, p);
}

class QueryEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = testing::MakeTestDb(); }
  void TearDown() override {
    if (engine_) engine_->Stop();
  }

  QueryEngine& Engine(QueryOptions options = {}) {
    engine_ = std::make_unique<QueryEngine>(options, db_->db, &clock_);
    Status st = engine_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *engine_;
  }

  // The value of `sql`'s single cell as JSON text ("3", "\"x\"").
  std::string Cell(const std::string& sql) {
    auto r = engine_->Execute(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok()) return "";
    std::string body = WithoutElapsed(r->json);
    size_t rows = body.find("\"rows\":[[");
    size_t end = body.rfind("]],\"row_count\"");
    if (rows == std::string::npos || end == std::string::npos) return body;
    return body.substr(rows + 9, end - rows - 9);
  }

  std::unique_ptr<testing::TestDb> db_;
  ManualClock clock_{1'714'564'800'000'000 + 3600'000'000LL * 2};  // 2024-05-01T14:00:00Z
  std::unique_ptr<QueryEngine> engine_;
};

TEST_F(QueryEngineTest, RendersValuesAsTypedJson) {
  QueryEngine& e = Engine();
  auto r = e.Execute(
      "SELECT 1::BIGINT AS a, 'x' AS b, NULL::INTEGER AS c, 2.5::DOUBLE AS d, true AS e, "
      "[1, 2, NULL] AS l, {'k': 'v', 'n': [1]} AS s, 9007199254740993::BIGINT AS big, "
      "TIMESTAMPTZ '2024-05-01 12:00:00.123456+00' AS ts, DATE '2024-05-01' AS dt, "
      "'{\"a\":[1,{\"b\":null}]}'::JSON AS j, 12.50::DECIMAL(10,2) AS dec");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(WithoutElapsed(r->json),
            R"j({"columns":["a","b","c","d","e","l","s","big","ts","dt","j","dec"],)j"
            R"j("types":["BIGINT","VARCHAR","INTEGER","DOUBLE","BOOLEAN","INTEGER[]",)j"
            R"j("STRUCT(k VARCHAR, n INTEGER[])","BIGINT","TIMESTAMP WITH TIME ZONE","DATE",)j"
            R"j("JSON","DECIMAL(10,2)"],)j"
            R"j("rows":[[1,"x",null,2.5,true,[1,2,null],{"k":"v","n":[1]},"9007199254740993",)j"
            R"j("2024-05-01T12:00:00.123456Z","2024-05-01",{"a":[1,{"b":null}]},12.50]],)j"
            R"j("row_count":1)j");
  EXPECT_EQ(r->row_count, 1u);
  EXPECT_GE(r->elapsed_ms, 0);

  // The whole document is valid JSON with a numeric elapsed_ms.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(r->json).get(root), simdjson::SUCCESS) << r->json;
  double elapsed = -1;
  ASSERT_EQ(root["elapsed_ms"].get(elapsed), simdjson::SUCCESS);
  EXPECT_GE(elapsed, 0);
}

TEST_F(QueryEngineTest, ReadsTheEventsViewWithUtcTimesAndEmbeddedJson) {
  QueryEngine& e = Engine();
  // The session zone is America/New_York (test_db.h); output stays UTC.
  EXPECT_EQ(Cell("SELECT current_setting('TimeZone')"), "\"America/New_York\"");
  auto r = e.Execute(
      "SELECT event_id, event, event_time, sent_at, properties, properties->>'plan' AS plan "
      "FROM events ORDER BY event_id");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(WithoutElapsed(r->json),
            R"j({"columns":["event_id","event","event_time","sent_at","properties","plan"],)j"
            R"j("types":["VARCHAR","VARCHAR","TIMESTAMP WITH TIME ZONE",)j"
            R"j("TIMESTAMP WITH TIME ZONE","JSON","VARCHAR"],"rows":[)j"
            R"j(["e1","Signup","2024-05-01T12:00:00.123456Z","2024-05-01T12:00:01.000000Z",)j"
            R"j({"plan":"pro","seats":3},"pro"],)j"
            R"j(["e2",null,"2024-05-01T12:01:00.000000Z",null,{},null],)j"
            R"j(["e3","Purchase","2024-05-01T13:30:00.000000Z",null,)j"
            R"j({"amount":12.5,"items":[1,2]},null]],"row_count":3)j");
  EXPECT_EQ(Cell("SELECT count(*) FROM events_rejected"), "1");
  EXPECT_EQ(Cell("SELECT committed_offset FROM sluice_offsets"), "42");  // readable, see header
  // Reads that DuckDB rewrites into SELECTs, and EXPLAIN, are allowed.
  EXPECT_TRUE(e.Execute("DESCRIBE events").ok());
  EXPECT_TRUE(e.Execute("SHOW TABLES").ok());
  EXPECT_TRUE(e.Execute("SUMMARIZE events_1m").ok());
  EXPECT_TRUE(e.Execute("EXPLAIN SELECT * FROM events").ok());
  EXPECT_TRUE(e.Execute("  -- a comment\n  FROM events_1m LIMIT 1").ok());
}

TEST_F(QueryEngineTest, RefusesEverythingButOneRead) {
  QueryEngine& e = Engine();
  const std::string inside = (db_->dir / "x.csv").string();  // allowed dir: COPY would work
  const std::filesystem::path outside =
      std::filesystem::temp_directory_path() / ("sluice-outside-" + std::to_string(getpid()));
  struct Case {
    std::string sql;
    std::string message;  // a substring of the refusal
  };
  const Case cases[] = {
      {"SELECT * FROM read_csv('/etc/passwd')", "Permission Error"},
      {"SELECT * FROM read_text('/etc/hostname')", "Permission Error"},
      {"COPY events TO '" + outside.string() + ".csv'",
       "only a single read-only SELECT is allowed; got COPY"},
      {"COPY events TO '" + inside + "'", "only a single read-only SELECT is allowed; got COPY"},
      {"ATTACH '" + outside.string() + ".duckdb'", "got ATTACH"},
      {"ATTACH '" + (db_->dir / "other.duckdb").string() + "' AS o", "got ATTACH"},
      {"CREATE TABLE t(a int)", "only a single read-only SELECT is allowed; got CREATE"},
      {"INSERT INTO events_1m VALUES (now(), 'track', 'X', 1)", "got INSERT"},
      {"UPDATE events_1m SET count = 0", "got UPDATE"},
      {"DELETE FROM events_1m", "got DELETE"},
      {"DROP TABLE events_1m", "got DROP"},
      {"INSTALL httpfs", "got INSTALL"},
      {"LOAD httpfs", "got LOAD"},
      {"SET memory_limit='1TB'", "got SET"},
      {"RESET memory_limit", "got RESET"},
      {"PRAGMA enable_profiling", "only a single read-only SELECT is allowed"},
      {"CALL checkpoint()", "got CALL"},
      {"CHECKPOINT", "got CHECKPOINT"},
      {"EXPORT DATABASE '" + outside.string() + "'", "got EXPORT"},
      {"BEGIN TRANSACTION", "got BEGIN"},
      {"SELECT 1; DROP TABLE events_1m", "got 2 statements"},
      {"SELECT 1; SELECT 2", "got 2 statements"},
      // Layer 3: reads with side effects fail inside the read-only transaction.
      {"SELECT nextval('sluice_seq')", "read-only"},
      {"EXPLAIN ANALYZE INSERT INTO events_1m VALUES (now(), 'track', 'X', 1)", "read-only"},
      // Plain errors keep DuckDB's message.
      {"SELECT * FROM no_such_table", "no_such_table"},
      {"SELEC 1", "syntax error"},
      {"", "no SQL statement"},
      {" ; ", "no SQL statement"},
  };
  for (const auto& c : cases) {
    auto r = e.Execute(c.sql);
    if (r.ok()) {
      ADD_FAILURE() << "not refused: " << c.sql;
      continue;
    }
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
        << c.sql << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.sql << " → " << r.status().message();
  }
  // Nothing changed, nothing was written, and the engine still answers.
  EXPECT_EQ(Cell("SELECT sum(count) FROM events_1m"), "22");
  EXPECT_EQ(Cell("SELECT count(*) FROM duckdb_tables()"), "4");
  EXPECT_EQ(Cell("SELECT count(*) FROM duckdb_databases() WHERE NOT internal"), "1");
  EXPECT_EQ(Cell("SELECT current_setting('memory_limit')"), "\"953.6 MiB\"");
  EXPECT_FALSE(std::filesystem::exists(inside));
  EXPECT_FALSE(std::filesystem::exists(outside.string() + ".csv"));
  EXPECT_FALSE(std::filesystem::exists(outside.string() + ".duckdb"));
  EXPECT_FALSE(std::filesystem::exists(outside));
}

TEST_F(QueryEngineTest, RefusesSqlOverTheSizeLimit) {
  QueryOptions o;
  o.max_sql_bytes = 100;
  QueryEngine& e = Engine(o);
  auto r = e.Execute("SELECT 1 " + std::string(100, ' '));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("limit of 100 bytes"), std::string::npos);
  EXPECT_TRUE(e.Execute("SELECT 1").ok());
}

TEST_F(QueryEngineTest, StopsARunawayQueryAndKeepsServing) {
  QueryOptions o;
  o.connections = 1;  // the next query must run on the very connection that was interrupted
  o.timeout = milliseconds(300);
  QueryEngine& e = Engine(o);
  auto& timeouts =
      metrics::Default().GetCounter("sluice_queries_total", "", {{"outcome", "timeout"}});
  uint64_t before = timeouts.Value();
  for (int i = 0; i < 2; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = e.Execute("SELECT count(*) FROM range(1e12::BIGINT) a");
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
    EXPECT_EQ(r.status().message(),
              "query ran longer than the 300 ms limit (--query-timeout) and was stopped");
    EXPECT_GE(took, milliseconds(290));
    EXPECT_LT(took, milliseconds(5000));
    EXPECT_EQ(Cell("SELECT 42"), "42");
    EXPECT_EQ(Cell("SELECT sum(count) FROM events_1m"), "22");
  }
  EXPECT_EQ(timeouts.Value(), before + 2);
}

TEST_F(QueryEngineTest, CapsTheRowCountWithoutComputingTheRest) {
  QueryOptions o;
  o.max_rows = 1000;
  o.timeout = milliseconds(20'000);
  QueryEngine& e = Engine(o);
  auto ok = e.Execute("SELECT * FROM range(1000)");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->row_count, 1000u);
  for (const char* sql : {"SELECT * FROM range(1001)", "SELECT * FROM range(1e12::BIGINT)"}) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = e.Execute(sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(),
              "the result has more than 1000 rows (--query-max-rows); add a LIMIT or aggregate");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000)) << sql;
  }
  EXPECT_EQ(Cell("SELECT 7"), "7");
}

TEST_F(QueryEngineTest, CapsTheResultBytes) {
  QueryOptions o;
  o.max_result_bytes = 10'000;
  QueryEngine& e = Engine(o);
  auto r = e.Execute("SELECT repeat('x', 1000) FROM range(100)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("larger than the limit of 10000 bytes"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(e.Execute("SELECT repeat('x', 1000) FROM range(5)").ok());
}

TEST_F(QueryEngineTest, MemoryLimitIsResourceExhausted) {
  db_ = testing::MakeTestDb("64MB");
  QueryEngine& e = Engine();
  auto r = e.Execute(
      "SELECT list(range::VARCHAR || 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') "
      "FROM range(20000000)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("Out of Memory"), std::string::npos);
  EXPECT_EQ(Cell("SELECT 1"), "1");
}

TEST_F(QueryEngineTest, RefusesWhenBusyAndFailsQueuedQueriesOnStop) {
  QueryOptions o;
  o.connections = 1;
  o.max_queued = 1;
  o.timeout = milliseconds(60'000);
  QueryEngine& e = Engine(o);
  std::vector<std::future<QueryReply>> replies;
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_shared<std::promise<QueryReply>>();
    replies.push_back(p->get_future());
    e.ExecuteAsync("SELECT count(*) FROM range(1e12::BIGINT) a",
                   [p](QueryReply r) { p->set_value(std::move(r)); });
  }
  // One runs, at most one waits: the third (or second) is refused at once.
  int busy_now = 0;
  for (auto& f : replies) {
    if (f.wait_for(milliseconds(0)) == std::future_status::ready) {
      QueryReply r = f.get();
      EXPECT_EQ(r.outcome, QueryOutcome::kBusy);
      EXPECT_EQ(r.result.status().code(), StatusCode::kUnavailable);
      EXPECT_NE(r.result.status().message().find("busy"), std::string::npos);
      ++busy_now;
    }
  }
  EXPECT_GE(busy_now, 1);
  // Stop interrupts the running query and fails the queued one, promptly.
  auto t0 = std::chrono::steady_clock::now();
  e.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  for (auto& f : replies) {
    if (!f.valid()) continue;
    ASSERT_EQ(f.wait_for(milliseconds(0)), std::future_status::ready);
    QueryReply r = f.get();
    EXPECT_EQ(r.outcome, QueryOutcome::kBusy) << r.result.status().ToString();
  }
  auto after = e.Execute("SELECT 1");
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
}

TEST_F(QueryEngineTest, ConcurrentQueriesAllAnswer) {
  QueryOptions o;
  o.connections = 2;
  o.max_queued = 64;
  QueryEngine& e = Engine(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = e.Execute("SELECT count(*) FROM events");
        if (r.ok() && r->json.find("[[3]]") != std::string::npos) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

// ---- stats ----------------------------------------------------------------------------------

constexpr int64_t kMay1Noon = 1'714'564'800'000'000;  // 2024-05-01T12:00:00Z
constexpr int64_t kHour = 3'600'000'000;

TEST_F(QueryEngineTest, StatsBucketsAndFilters) {
  QueryEngine& e = Engine();
  StatsRequest req;
  req.from_us = kMay1Noon;
  req.to_us = kMay1Noon + 2 * kHour;
  req.interval = "1h";
  auto r = e.Stats(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            R"j({"interval":"1h","from":"2024-05-01T12:00:00.000000Z",)j"
            R"j("to":"2024-05-01T14:00:00.000000Z","series":[)j"
            R"j({"t":"2024-05-01T12:00:00.000000Z","event":"","count":7},)j"
            R"j({"t":"2024-05-01T12:00:00.000000Z","event":"Purchase","count":1},)j"
            R"j({"t":"2024-05-01T12:00:00.000000Z","event":"Signup","count":5},)j"
            R"j({"t":"2024-05-01T13:00:00.000000Z","event":"Purchase","count":4}],"total":17})j");

  req.event = "Signup";
  req.interval = "1m";
  r = e.Stats(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, R"j({"interval":"1m","from":"2024-05-01T12:00:00.000000Z",)j"
                R"j("to":"2024-05-01T14:00:00.000000Z","series":[)j"
                R"j({"t":"2024-05-01T12:00:00.000000Z","event":"Signup","count":3},)j"
                R"j({"t":"2024-05-01T12:01:00.000000Z","event":"Signup","count":2}],"total":5})j");

  // Day buckets are UTC days, whatever the session time zone (America/New_York here).
  req = {};
  req.from_us = kMay1Noon - 12 * kHour;
  req.to_us = kMay1Noon + 36 * kHour;
  req.interval = "1d";
  req.event = "Signup";
  r = e.Stats(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find(R"j({"t":"2024-05-01T00:00:00.000000Z","event":"Signup","count":5},)j"
                    R"j({"t":"2024-05-02T00:00:00.000000Z","event":"Signup","count":5}])j"),
            std::string::npos)
      << *r;

  // Event names are bound, not spliced into SQL.
  req.event = "x' OR '1'='1";
  r = e.Stats(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find(R"j("series":[],"total":0)j"), std::string::npos) << *r;
}

TEST_F(QueryEngineTest, StatsDefaultsAndErrors) {
  QueryEngine& e = Engine();
  // Defaults: to = now (14:00 on the manual clock), from = an hour earlier, 1m buckets.
  auto r = e.Stats({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            R"j({"interval":"1m","from":"2024-05-01T13:00:00.000000Z",)j"
            R"j("to":"2024-05-01T14:00:00.000000Z","series":[)j"
            R"j({"t":"2024-05-01T13:00:00.000000Z","event":"Purchase","count":4}],"total":4})j");
  StatsRequest week;
  week.from_us = kMay1Noon - 7 * 24 * kHour;
  week.to_us = kMay1Noon + 24 * kHour;
  r = e.Stats(week);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rfind(R"j({"interval":"1h")j", 0), 0u) << *r;
  week.from_us = kMay1Noon - 30 * 24 * kHour;
  r = e.Stats(week);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rfind(R"j({"interval":"1d")j", 0), 0u) << *r;

  StatsRequest bad;
  bad.from_us = kMay1Noon;
  bad.to_us = kMay1Noon;
  EXPECT_EQ(e.Stats(bad).status().code(), StatusCode::kInvalidArgument);
  bad.to_us = kMay1Noon + kHour;
  bad.interval = "5m";
  auto st = e.Stats(bad).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("1m, 1h, 1d"), std::string::npos);
  bad.interval = "1m";
  bad.from_us = kMay1Noon - 30 * 24 * kHour;
  st = e.Stats(bad).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("larger interval"), std::string::npos) << st.message();
}

// ---- history from a bucket (HistoryGate) ---------------------------------------------------

// Records what the engine asks for, and answers with `answer` (a lease when OK).
class RecordingGate final : public HistoryGate {
 public:
  struct Lease final : HistoryLease {
    explicit Lease(std::atomic<int>* live) : live_(live) { ++*live_; }
    ~Lease() override { --*live_; }
    std::atomic<int>* live_;
  };
  Result<std::unique_ptr<HistoryLease>> Acquire(int64_t from_us, int64_t to_us,
                                                std::chrono::steady_clock::time_point) override {
    ranges.emplace_back(from_us, to_us);
    live_during_acquire = live.load();
    if (!answer.ok()) return answer;
    return std::unique_ptr<HistoryLease>(new Lease(&live));
  }
  std::vector<std::pair<int64_t, int64_t>> ranges;
  Status answer;
  std::atomic<int> live{0};
  int live_during_acquire = -1;
};

constexpr int64_t kNoon = 1'714'564'800'000'000;  // 2024-05-01T12:00:00Z

TEST_F(QueryEngineTest, AStatementOnEventsAcquiresTheRangeItReadsAndReleasesIt) {
  RecordingGate gate;
  engine_ = std::make_unique<QueryEngine>(QueryOptions{}, db_->db, &clock_);
  engine_->SetHistoryGate(&gate);
  ASSERT_TRUE(engine_->Start().ok());
  // e1 and e2 arrived between 12:00 and 13:00, e3 at 13:30.
  EXPECT_EQ(Cell("SELECT count(*) FROM events WHERE received_at >= TIMESTAMPTZ "
                 "'2024-05-01 12:00:00+00' AND received_at < TIMESTAMPTZ '2024-05-01 13:00:00+00'"),
            "2");
  EXPECT_EQ(Cell("SELECT count(*) FROM events WHERE received_at BETWEEN TIMESTAMPTZ "
                 "'2024-05-01 13:00:00+00' AND TIMESTAMPTZ '2024-05-01 14:00:00+00'"),
            "1");
  EXPECT_EQ(gate.live_during_acquire, 0) << "the first statement's lease ended with it";
  using Range = std::pair<int64_t, int64_t>;
  ASSERT_EQ(gate.ranges.size(), 2u);
  EXPECT_EQ(gate.ranges[0], Range(kNoon, kNoon + int64_t{3600'000'000}));
  EXPECT_EQ(gate.ranges[1], Range(kNoon + int64_t{3600'000'000}, kNoon + int64_t{7200'000'001}));
  EXPECT_EQ(gate.live.load(), 0) << "the lease ends with the statement";
  // No range: everything; no `events`: the gate is not asked.
  (void)Cell("SELECT count(*) FROM events");
  ASSERT_EQ(gate.ranges.size(), 3u);
  EXPECT_EQ(gate.ranges[2], Range(INT64_MIN, INT64_MAX));
  (void)Cell("SELECT sum(count) FROM events_1m");
  EXPECT_EQ(gate.ranges.size(), 3u);
}

TEST_F(QueryEngineTest, TheGatesRefusalsBecomeClearOutcomes) {
  RecordingGate gate;
  engine_ = std::make_unique<QueryEngine>(QueryOptions{}, db_->db, &clock_);
  engine_->SetHistoryGate(&gate);
  ASSERT_TRUE(engine_->Start().ok());
  struct Case {
    Status answer;
    QueryOutcome outcome;
    std::string words;
  };
  const std::vector<Case> cases = {
      {Status::ResourceExhausted("the query reads 3 history files of 2.00 GiB but the local "
                                 "history cache holds 1.00 GiB (--history-cache-bytes)"),
       QueryOutcome::kOutOfMemory, "--history-cache-bytes"},
      {Status::DeadlineExceeded("time ran out"), QueryOutcome::kTimeout, "--query-timeout"},
      {Status::Unavailable("s3://b: connection refused"), QueryOutcome::kBusy,
       "could not be fetched"},
      {Status::Corruption("checksum mismatch"), QueryOutcome::kError, "checksum mismatch"},
  };
  for (const Case& c : cases) {
    gate.answer = c.answer;
    std::promise<QueryReply> done;
    engine_->ExecuteAsync("SELECT count(*) FROM events",
                          [&](QueryReply r) { done.set_value(std::move(r)); });
    QueryReply r = done.get_future().get();
    EXPECT_EQ(r.outcome, c.outcome) << c.answer.ToString();
    ASSERT_FALSE(r.result.ok());
    EXPECT_NE(r.result.status().message().find(c.words), std::string::npos)
        << r.result.status().ToString();
  }
  // The worker's connection is fine afterwards.
  gate.answer = Status::OK();
  EXPECT_EQ(Cell("SELECT 1"), "1");
  EXPECT_EQ(Cell("SELECT count(*) > 0 FROM events"), "true");
}

}  // namespace
}  // namespace sluice::query
