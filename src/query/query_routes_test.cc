// POST /v1/query and GET /v1/stats through a real http::Server.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <mutex>

#include "common/metrics.h"
#include "http/auth.h"
#include "http/server.h"
#include "http/test_client.h"
#include "query/query_engine.h"
#include "query/test_db.h"

namespace sluice::query {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;


std::string ErrorOf(const std::string& body) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  std::string_view e;
  if (p.parse(body).get(root) != simdjson::SUCCESS) return "<not JSON: " + body + ">";
  bool success = true;
  EXPECT_EQ(root["success"].get(success), simdjson::SUCCESS) << body;
  EXPECT_FALSE(success);
  if (root["error"].get(e) != simdjson::SUCCESS) return "<no error: " + body + ">";
  return std::string(e);
}

class QueryRoutesTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> read_keys, std::vector<std::string> write_keys,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(300),
             SqlEngine* postgres = nullptr) {
    db_ = testing::MakeTestDb();
    for (const auto& k : read_keys) ASSERT_TRUE(keys_.Add(k, http::Role::kRead).ok());
    for (const auto& k : write_keys) ASSERT_TRUE(keys_.Add(k, http::Role::kWrite).ok());
    QueryOptions o;
    o.timeout = timeout;
    o.max_rows = 50;
    engine_ = std::make_unique<QueryEngine>(o, db_->db);
    ASSERT_TRUE(engine_->Start().ok());
    http::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.threads = 1;  // one I/O thread: a slow query must not hold it
    server_ = std::make_unique<http::Server>(so);
    engine_->RegisterRoutes(server_.get(), &keys_, postgres);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<http::TestClient>(server_->LocalAddress());
  }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::milliseconds(1000));
    if (engine_) engine_->Stop();
  }

  http::ClientResponse Query(const std::string& body, const Headers& headers) {
    auto r = client_->Post("/v1/query", body, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }
  http::ClientResponse Get(const std::string& target, const Headers& headers) {
    auto r = client_->Send("GET", target, "", headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }

  std::unique_ptr<testing::TestDb> db_;
  http::KeyStore keys_;
  std::unique_ptr<QueryEngine> engine_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::TestClient> client_;
};

const Headers kRead = {{"Authorization", "Bearer read-secret-1"}};

TEST_F(QueryRoutesTest, StatusCodes) {
  Start({"analyst:read-secret-1"}, {"web:write-secret-1"});
  const std::string count = R"j({"sql":"SELECT count(*) AS n FROM events"})j";

  auto r = Query(count, kRead);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.substr(0, r.body.find(",\"elapsed_ms\"")),
            R"j({"columns":["n"],"types":["BIGINT"],"rows":[[3]],"row_count":1)j");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  // A read key as the Basic user name works too; "engine":"duckdb" is the default.
  r = Query(R"j({"sql":"SELECT 1","engine":"duckdb"})j",
            {{"Authorization", "Basic " + http::Base64Encode("read-secret-1:")}});
  EXPECT_EQ(r.status, 200) << r.body;

  r = Query(count, {});
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(ErrorOf(r.body).find("missing read key"), std::string::npos);
  r = Query(count, {{"Authorization", "Bearer not-a-key-at-all"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ErrorOf(r.body), "unknown read key");
  r = Query(count, {{"Authorization", "Bearer write-secret-1"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorOf(r.body), "a write key cannot read");

  r = Query(R"j({"sql":"DROP TABLE events_1m"})j", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorOf(r.body), "only a single read-only SELECT is allowed; got DROP");
  r = Query(R"j({"sql":"SELECT * FROM nope"})j", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r.body).find("nope"), std::string::npos);
  r = Query("SELECT 1", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r.body).find("not JSON"), std::string::npos);
  r = Query(R"j({"query":"SELECT 1"})j", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r.body).find("\"sql\""), std::string::npos);
  r = Query(R"j({"sql":"SELECT 1","engine":"postgres"})j", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorOf(r.body), "engine \"postgres\" needs --store postgres://… (not configured)");

  r = Query(R"j({"sql":"SELECT * FROM range(51)"})j", kRead);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(ErrorOf(r.body).find("more than 50 rows"), std::string::npos);

  auto& timeouts =
      metrics::Default().GetCounter("sluice_queries_total", "", {{"outcome", "timeout"}});
  uint64_t before = timeouts.Value();
  r = Query(R"j({"sql":"SELECT count(*) FROM range(1e12::BIGINT) a"})j", kRead);
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(ErrorOf(r.body),
            "query ran longer than the 300 ms limit (--query-timeout) and was stopped");
  EXPECT_EQ(timeouts.Value(), before + 1);
  // And the server keeps serving.
  r = Query(count, kRead);
  EXPECT_EQ(r.status, 200);
  std::string prom = metrics::Default().RenderPrometheus();
  EXPECT_NE(prom.find("sluice_queries_total{outcome=\"ok\"}"), std::string::npos);
  EXPECT_NE(prom.find("sluice_query_seconds_bucket"), std::string::npos);
  EXPECT_NE(prom.find("# TYPE sluice_queries_running gauge"), std::string::npos);
}

TEST_F(QueryRoutesTest, SlowQueryDoesNotBlockTheIoThread) {
  Start({}, {}, std::chrono::milliseconds(3000));  // no keys: open
  std::thread slow([&] {
    http::TestClient c(server_->LocalAddress());
    auto r = c.Post("/v1/query", R"j({"sql":"SELECT count(*) FROM range(1e12::BIGINT) a"})j");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 504);
    EXPECT_NE(r->body.find("3 s limit"), std::string::npos) << r->body;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  auto r = Get("/v1/stats?from=2024-05-01T12:00:00Z&to=2024-05-01T14:00:00Z&interval=1h", {});
  EXPECT_EQ(r.status, 200) << r.body;
  // Answered while the other query still runs (it is stopped only at 3 s).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  slow.join();
}

TEST_F(QueryRoutesTest, Stats) {
  Start({"analyst:read-secret-1"}, {"web:write-secret-1"});
  auto r =
      Get("/v1/stats?from=2024-05-01T12:00:00Z&to=2024-05-01T14:00:00Z&interval=1h&"
          "event=Purchase",
          kRead);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"j({"interval":"1h","from":"2024-05-01T12:00:00.000000Z",)j"
            R"j("to":"2024-05-01T14:00:00.000000Z","series":[)j"
            R"j({"t":"2024-05-01T12:00:00.000000Z","event":"Purchase","count":1},)j"
            R"j({"t":"2024-05-01T13:00:00.000000Z","event":"Purchase","count":4}],"total":5})j");
  // Epoch seconds work too; the interval is chosen from the range when absent.
  r = Get("/v1/stats?from=1714564800&to=1714572000", kRead);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"j("interval":"1m")j"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"j("total":17)j"), std::string::npos) << r.body;

  r = Get("/v1/stats?from=yesterday", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(ErrorOf(r.body).find("from=yesterday"), std::string::npos);
  r = Get("/v1/stats?from=1714564800&to=1714572000&interval=2m", kRead);
  EXPECT_EQ(r.status, 400);
  r = Get("/v1/stats", {});
  EXPECT_EQ(r.status, 401);
  r = Get("/v1/stats", {{"Authorization", "Bearer write-secret-1"}});
  EXPECT_EQ(r.status, 403);
}

// Stands in for PostgresQueryEngine (postgres_query_test.cc runs the real one): records the SQL
// it is given and answers with `reply`.
class ScriptedEngine : public SqlEngine {
 public:
  void ExecuteAsync(std::string sql, QueryCallback done) override {
    {
      std::lock_guard lock(mu_);
      asked_.push_back(std::move(sql));
    }
    done(reply);
  }
  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }
  QueryReply reply;

 private:
  std::mutex mu_;
  std::vector<std::string> asked_;
};

TEST_F(QueryRoutesTest, EnginePostgresGoesToThePostgresEngine) {
  ScriptedEngine pg;
  const std::string doc =
      R"j({"columns":["x"],"types":["INTEGER"],"rows":[[7]],"row_count":1,"elapsed_ms":0.5})j";
  pg.reply = {QueryOutcome::kOk, QueryResultJson{doc, 1, 0.5}};
  Start({"analyst:read-secret-1"}, {"web:write-secret-1"}, std::chrono::milliseconds(300), &pg);

  auto r = Query(R"j({"sql":"SELECT 7 AS x","engine":"postgres"})j", kRead);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, doc);
  EXPECT_EQ(pg.asked(), std::vector<std::string>{"SELECT 7 AS x"});
  // Without "engine", or with "duckdb", DuckDB answers.
  r = Query(R"j({"sql":"SELECT 8 AS x"})j", kRead);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"rows\":[[8]]"), std::string::npos) << r.body;
  r = Query(R"j({"sql":"SELECT 9 AS x","engine":"duckdb"})j", kRead);
  EXPECT_NE(r.body.find("\"rows\":[[9]]"), std::string::npos) << r.body;
  EXPECT_EQ(pg.asked().size(), 1u);

  // The same outcome → status mapping as DuckDB's, with the engine's sentence.
  struct Case {
    QueryOutcome outcome;
    int status;
  };
  for (Case c : {Case{QueryOutcome::kInvalid, 400}, Case{QueryOutcome::kTimeout, 504},
                 Case{QueryOutcome::kTooManyRows, 413}, Case{QueryOutcome::kOutOfMemory, 413},
                 Case{QueryOutcome::kBusy, 503}, Case{QueryOutcome::kError, 500}}) {
    pg.reply = {c.outcome, Status::Internal("sentence for " + std::string(OutcomeName(c.outcome)))};
    r = Query(R"j({"sql":"SELECT 1","engine":"postgres"})j", kRead);
    EXPECT_EQ(r.status, c.status) << OutcomeName(c.outcome);
    EXPECT_EQ(ErrorOf(r.body), "sentence for " + std::string(OutcomeName(c.outcome)));
    EXPECT_EQ(r.Header("retry-after"), c.status == 503 ? "1" : "");
  }

  // Keys guard it like DuckDB: the engine is not even asked.
  const size_t asked = pg.asked().size();
  r = Query(R"j({"sql":"SELECT 1","engine":"postgres"})j", {});
  EXPECT_EQ(r.status, 401);
  r = Query(R"j({"sql":"SELECT 1","engine":"postgres"})j",
            {{"Authorization", "Bearer write-secret-1"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(pg.asked().size(), asked);

  r = Query(R"j({"sql":"SELECT 1","engine":"oracle"})j", kRead);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorOf(r.body), "unknown engine \"oracle\"; use \"duckdb\" or \"postgres\"");
}

TEST_F(QueryRoutesTest, UnknownEngineNamesOnlyTheConfiguredOnes) {
  Start({}, {});
  auto r = Query(R"j({"sql":"SELECT 1","engine":"oracle"})j", {});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorOf(r.body), "unknown engine \"oracle\"; use \"duckdb\"");
}

}  // namespace
}  // namespace sluice::query
