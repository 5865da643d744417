// PostgresQueryEngine against a real PostgreSQL 15 primary and streaming replica
// (SLUICE_TEST_PG_URL, SLUICE_TEST_PG_REPLICA_URL; scripts/test.sh starts them, pg/test_env.h
// says how by hand).
//
// Queries run as a dedicated login role with SELECT only, made here by `postgres` on the
// primary (roles replicate). scripts/pg.sh's pg_hba lets only `postgres` in over TCP and every
// role in over the unix socket, so the role connects through the server's socket directory.
#include "query/postgres_query.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/temp_dir.h"
#include "duck/duck.h"
#include "event/parser.h"
#include "http/server.h"
#include "http/test_client.h"
#include "pg/test_env.h"
#include "query/query_client.h"
#include "query/query_engine.h"
#include "query/stats.h"
#include "store/duckdb_store.h"
#include "store/postgres_store.h"

namespace sluice::query {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

constexpr int64_t kDay0 = 1'714'521'600'000'000;  // 2024-05-01T00:00:00Z

std::string WithoutElapsed(const std::string& json) {
  size_t p = json.find(",\"elapsed_ms\":");
  return p == std::string::npos ? json : json.substr(0, p);
}

QueryReply Ask(SqlEngine& engine, const std::string& sql) {
  std::promise<QueryReply> promise;
  auto future = promise.get_future();
  engine.ExecuteAsync(sql, [&promise](QueryReply r) { promise.set_value(std::move(r)); });
  return future.get();
}

// The JSON rows of a successful query ("[[1]]"), or the error.
std::string Rows(SqlEngine& engine, const std::string& sql) {
  QueryReply r = Ask(engine, sql);
  if (!r.result.ok()) return "error: " + r.result.status().ToString();
  const std::string& j = r.result->json;
  size_t a = j.find("\"rows\":");
  size_t b = j.rfind(",\"row_count\"");
  return j.substr(a + 7, b - a - 7);
}

std::unique_ptr<pg::Connection> Open(const std::string& conninfo) {
  auto c = pg::Connection::Open(conninfo);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

void Exec(pg::Connection& c, const std::string& sql) {
  Status st = c.Exec(sql);
  ASSERT_TRUE(st.ok()) << sql << ": " << st.ToString();
}

int64_t Count(pg::Connection& c, const std::string& sql) {
  auto rows = c.Query(sql);
  EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status().ToString();
  if (!rows.ok() || rows->rows() != 1) return -1;
  auto n = rows->Int64(0, 0);
  return n.ok() ? *n : -1;
}

// key=value conninfo for `user` on database `db` through the unix socket of the server
// `admin_url` points at.
std::string SocketConninfo(const std::string& admin_url, const std::string& db,
                           const std::string& user) {
  auto c = Open(admin_url);
  if (!c) return "";
  auto rows = c->Query(
      "SELECT split_part(current_setting('unix_socket_directories'), ',', 1), "
      "current_setting('port')");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (!rows.ok()) return "";
  return "host=" + std::string(rows->Text(0, 0)) + " port=" + std::string(rows->Text(0, 1)) +
         " dbname=" + db + " user=" + user;
}

// A login role, dropped when the object goes (after the databases it has grants in).
class TestRole {
 public:
  TestRole(std::string admin_url, std::string name)
      : admin_url_(std::move(admin_url)), name_(std::move(name)) {
    auto c = Open(admin_url_);
    if (c) {
      (void)c->Exec("DROP ROLE IF EXISTS " + name_);
      Exec(*c, "CREATE ROLE " + name_ + " LOGIN");
    }
  }
  ~TestRole() {
    auto c = pg::Connection::Open(admin_url_);
    if (c.ok()) (void)(*c)->Exec("DROP ROLE IF EXISTS " + name_);
  }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_, name_;
};

// ---- stats helpers ---------------------------------------------------------------------------

// A rollup row as both stores hold it.
struct Rollup {
  int64_t minute_us;
  std::string type;
  std::optional<std::string> event;  // nullopt: NULL, an event without a name
  int64_t count;
};

// Rollups over three days from 2024-04-30T22:00Z and over the hours around 1970-01-01 (negative
// times), of unnamed (NULL), ""-named and named events, names whose byte order differs from a
// language's ("Zebra" < "apple" < "ä" < "Ébène"… by bytes), a quote, and counts up to 10^12;
// one row per (minute, type, event) as the stores keep them. Deterministic.
std::vector<Rollup> MakeRollups() {
  const std::vector<std::optional<std::string>> names = {
      std::nullopt, "",      "Signup", "Purchase",     "apple",
      "Zebra",      "Ébène", "ä",      "x' OR '1'='1", "Order Completed"};
  const std::vector<std::string> types = {"track", "page", "screen"};
  std::vector<Rollup> rows;
  uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  auto add = [&](int64_t first, int64_t end, int64_t every_minutes) {
    for (int64_t m = first; m < end; m += every_minutes * kMicrosPerMinute) {
      for (const auto& name : names) {
        for (const auto& type : types) {
          if (next() % 4 != 0) continue;  // a quarter of the keys each minute
          const uint64_t r = next();
          const int64_t count =
              r % 97 == 0 ? 1'000'000'000'000 : static_cast<int64_t>(1 + r % 1000);
          rows.push_back({m, type, name, count});
        }
      }
    }
  };
  add(kDay0 - 2 * kMicrosPerHour, kDay0 + 3 * kMicrosPerDay, 7);
  add(-2 * kMicrosPerHour, 2 * kMicrosPerHour, 13);
  return rows;
}

// One INSERT of `rows` into events_1m, in SQL both DuckDB and PostgreSQL read alike.
std::string InsertRollupsSql(const std::vector<Rollup>& rows) {
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
    return q + "'";
  };
  std::string sql = "INSERT INTO events_1m (minute, type, event, count) VALUES ";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Rollup& r = rows[i];
    sql += (i ? ",(" : "(") + quote(event::FormatTimestamp(r.minute_us)) + "::TIMESTAMPTZ, " +
           quote(r.type) + ", " + (r.event ? quote(*r.event) : "NULL") + ", " +
           std::to_string(r.count) + ")";
  }
  return sql;
}

// The answer to `plan` computed here from `rows`, without either database.
std::string ExpectedStats(const std::vector<Rollup>& rows, const StatsPlan& plan) {
  std::map<std::pair<int64_t, std::string>, int64_t> points;  // std::string orders by bytes
  for (const Rollup& r : rows) {
    if (r.minute_us < plan.from_us || r.minute_us >= plan.to_us) continue;
    if (plan.event && r.event != plan.event) continue;
    points[{BucketStart(r.minute_us, plan.step_us), r.event.value_or("")}] += r.count;
  }
  StatsJson json(plan, points.size());
  for (const auto& [key, count] : points) EXPECT_TRUE(json.Add(key.first, key.second, count).ok());
  return json.Finish();
}

// An engine's answer as one comparable string: "200 <document>" or "<code>: <message>".
std::string StatsAnswer(StatsEngine& engine, const StatsRequest& request) {
  auto r = engine.Stats(request);
  if (r.ok()) return "200 " + *r;
  return std::string(StatusCodeName(r.status().code())) + ": " + r.status().message();
}

// A DuckDbStore in `dir`, as serve opens it.
std::unique_ptr<store::DuckDbStore> OpenDuckStore(const std::string& dir) {
  store::DuckDbStoreOptions o;
  o.path = dir + "/hot.duckdb";
  o.sandbox.allowed_directories = {dir};
  o.sandbox.memory_limit = "1GB";
  o.threads = 2;
  auto s = store::DuckDbStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

class PostgresQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_PG_URL_OR_SKIP(primary, "SLUICE_TEST_PG_URL");
    primary_ = primary;
    replica_ = pg::testing::EnvOr("SLUICE_TEST_PG_REPLICA_URL");
    static int counter = 0;
    role_ = std::make_unique<TestRole>(
        primary_, "sluice_reader_" + std::to_string(::getpid()) + "_" + std::to_string(++counter));
    db_ = std::make_unique<pg::testing::TestDatabase>(primary_, replica_);
    ASSERT_TRUE(db_->ok());
    admin_ = Open(db_->url());
    ASSERT_NE(admin_, nullptr);
    Exec(*admin_, R"sql(
      CREATE TABLE t_types (id int PRIMARY KEY, i int, big bigint, small smallint,
        dec numeric(10,3), f8 double precision, f4 real, b bool, s text, vc varchar(10),
        ts timestamptz, tsn timestamp, d date, tm time, tmz timetz, iv interval, j json,
        jb jsonb, u uuid, by bytea, ints int[], texts text[], addr inet);
      INSERT INTO t_types VALUES
        (1, -7, 9007199254740993, 3, 123.450, 2.5, 1.5, true, 'a "q"', 'v',
         '2024-05-01 14:00:00.123456+02', '2024-05-01 12:00:00', '2024-05-01', '12:00:00.5',
         '12:00:00+05:30', '1 year 2 mons 3 days 04:05:06.5', '{"a": [1, {"b": null}]}',
         '{"a": [1, {"b": null}]}', '0190b6a4-0000-7000-8000-000000000001', '\x6869ff',
         '{1,NULL,3}', '{"x y",NULL}', '10.0.0.1'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      CREATE TABLE t_rows AS SELECT g FROM generate_series(1, 1000) g;
      CREATE TABLE t_live (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
      CREATE SEQUENCE t_seq;
    )sql");
    Exec(*admin_, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role_->name());
    Exec(*admin_, "GRANT USAGE ON SEQUENCE t_seq TO " + role_->name());
    reader_ = SocketConninfo(primary_, db_->name(), role_->name());
  }

  void TearDown() override {
    if (server_) server_->Stop(milliseconds(1000));
    if (engine_) engine_->Stop();
    if (duck_) duck_->Stop();
    admin_.reset();
    db_.reset();  // before the role: it holds the role's grants
    role_.reset();
  }

  // The same `rows` in PostgreSQL's events_1m (the PostgresStore schema, readable by the
  // test's role) and in a DuckDbStore's in `dir`, which it returns.
  std::unique_ptr<store::DuckDbStore> LoadRollups(const std::vector<Rollup>& rows,
                                                  const std::string& dir) {
    auto migrated = store::MigratePostgres(db_->url());
    EXPECT_TRUE(migrated.ok()) << migrated.status().ToString();
    const std::string insert = InsertRollupsSql(rows);
    Exec(*admin_, insert);
    Exec(*admin_, "GRANT SELECT ON events_1m TO " + role_->name());
    auto duck_store = OpenDuckStore(dir);
    if (!duck_store) return nullptr;
    auto conn = duck::Connection::Open(duck_store->database());
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return nullptr;
    Status st = (*conn)->Exec(insert);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return duck_store;
  }

  PostgresQueryEngine& Engine(QueryOptions limits = {}, std::string conninfo = "") {
    PostgresQueryOptions o;
    o.conninfo = conninfo.empty() ? reader_ : conninfo;
    o.limits = limits;
    engine_ = std::make_unique<PostgresQueryEngine>(o, &clock_);
    Status st = engine_->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *engine_;
  }

  // The stats' "now" for both engines: a day and a half into the test's rollups.
  ManualClock clock_{kDay0 + kMicrosPerDay + 12 * kMicrosPerHour};
  std::string primary_, replica_, reader_;
  std::unique_ptr<TestRole> role_;
  std::unique_ptr<pg::testing::TestDatabase> db_;
  std::unique_ptr<pg::Connection> admin_;
  std::unique_ptr<PostgresQueryEngine> engine_;
  std::unique_ptr<QueryEngine> duck_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(PostgresQueryTest, RendersEveryTypeInTheDocumentShape) {
  PostgresQueryEngine& e = Engine();
  QueryReply r = Ask(e, "SELECT * FROM t_types ORDER BY id");
  ASSERT_TRUE(r.result.ok()) << r.result.status().ToString();
  EXPECT_EQ(r.outcome, QueryOutcome::kOk);
  EXPECT_EQ(r.result->row_count, 2u);
  EXPECT_EQ(
      WithoutElapsed(r.result->json),
      R"j({"columns":["id","i","big","small","dec","f8","f4","b","s","vc","ts","tsn","d","tm",)j"
      R"j("tmz","iv","j","jb","u","by","ints","texts","addr"],)j"
      R"j("types":["INTEGER","INTEGER","BIGINT","SMALLINT","DECIMAL(10,3)","DOUBLE","FLOAT",)j"
      R"j("BOOLEAN","VARCHAR","VARCHAR","TIMESTAMP WITH TIME ZONE","TIMESTAMP","DATE","TIME",)j"
      R"j("TIME WITH TIME ZONE","INTERVAL","JSON","JSON","UUID","BLOB","INTEGER[]","VARCHAR[]",)j"
      R"j("inet"],"rows":[)j"
      R"j([1,-7,"9007199254740993",3,123.450,2.5,1.5,true,"a \"q\"","v",)j"
      R"j("2024-05-01T12:00:00.123456Z","2024-05-01T12:00:00.000000","2024-05-01",)j"
      R"j("12:00:00.500000","12:00:00.000000+05:30","1 year 2 months 3 days 04:05:06.5",)j"
      R"j({"a": [1, {"b": null}]},{"a": [1, {"b": null}]},)j"
      R"j("0190b6a4-0000-7000-8000-000000000001","hi\\xFF",[1,null,3],["x y",null],)j"
      R"j("10.0.0.1"],)j"
      R"j([2,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,)j"
      R"j(null,null,null,null,null,null]],"row_count":2)j");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(r.result->json).get(root), simdjson::SUCCESS) << r.result->json;
  double elapsed = -1;
  ASSERT_EQ(root["elapsed_ms"].get(elapsed), simdjson::SUCCESS);
  EXPECT_GE(elapsed, 0);
  // An empty result still names its columns.
  EXPECT_EQ(WithoutElapsed(Ask(e, "SELECT id FROM t_types WHERE false").result->json),
            R"j({"columns":["id"],"types":["INTEGER"],"rows":[],"row_count":0)j");
}

TEST_F(PostgresQueryTest, AnswersTheSameDocumentAsTheDuckDbEngine) {
  // SQL both dialects read the same way; the documents must be equal but for elapsed_ms.
  const std::string sql =
      "SELECT 1::INTEGER AS a, 9007199254740993::BIGINT AS b, 123.450::DECIMAL(10,3) AS c, "
      "2.5::DOUBLE PRECISION AS d, true AS e, 'x'::VARCHAR AS f, "
      "TIMESTAMPTZ '2024-05-01 12:00:00.5+00' AS g, DATE '2024-05-01' AS h, "
      "TIME '12:00:00.5' AS i, INTERVAL '1 year 2 months 3 days 04:05:06.5' AS j, "
      "'{\"a\":[1,2]}'::JSON AS k, NULL::INTEGER AS l, 0.1::DOUBLE PRECISION AS m, "
      "'NaN'::DOUBLE PRECISION AS n, TIMESTAMP '2024-05-01 12:00:00' AS o";
  auto db = duck::Database::Open(":memory:");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  duck_ = std::make_unique<QueryEngine>(QueryOptions{}, *db);
  ASSERT_TRUE(duck_->Start().ok());
  auto from_duck = duck_->Execute(sql);
  ASSERT_TRUE(from_duck.ok()) << from_duck.status().ToString();

  PostgresQueryEngine& e = Engine();
  auto from_pg = e.Execute(sql);
  ASSERT_TRUE(from_pg.ok()) << from_pg.status().ToString();
  EXPECT_EQ(WithoutElapsed(from_pg->json), WithoutElapsed(from_duck->json));
}

TEST_F(PostgresQueryTest, RefusesEverythingButOneRead) {
  PostgresQueryEngine& e = Engine();
  struct Case {
    std::string sql;
    std::string message;  // a substring of the refusal
  };
  const Case cases[] = {
      {"INSERT INTO t_rows VALUES (0)", "only a single read-only SELECT is allowed; got INSERT"},
      {"CREATE TABLE t_new (a int)", "only a single read-only SELECT is allowed; got CREATE"},
      {"  -- comment\n  DELETE FROM t_rows", "got DELETE"},
      {"SELECT 1; SELECT 2", "only a single read-only SELECT is allowed; got several statements"},
      {"SELECT 1; DELETE FROM t_rows", "got several statements"},
      {"WITH x AS (DELETE FROM t_rows RETURNING 1) SELECT count(*) FROM x",
       "got a statement that writes (PostgreSQL: cannot execute SELECT in a read-only "
       "transaction)"},
      {"SELECT nextval('t_seq')",
       "got a statement that writes (PostgreSQL: cannot execute nextval() in a read-only "
       "transaction)"},
      {"SELECT * FROM t_rows FOR UPDATE", "got a statement that writes"},
      {"COPY t_rows TO STDOUT", "got COPY"},
      {"SET statement_timeout = 0", "got SET"},
      {"DO $$ BEGIN PERFORM 1; END $$", "got DO"},
      {"BEGIN", "got BEGIN"},
      {"", "no SQL statement given"},
      {"SELECT pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"},
      {"SELECT * FROM nope", "relation \"nope\" does not exist (SQLSTATE 42P01)"},
      {"SELECT 1/0", "division by zero"},
      {"SELEC 1", "got SELEC"},
  };
  for (const auto& c : cases) {
    QueryReply r = Ask(e, c.sql);
    EXPECT_EQ(r.outcome, QueryOutcome::kInvalid) << c.sql;
    ASSERT_FALSE(r.result.ok()) << c.sql;
    EXPECT_EQ(r.result.status().code(), StatusCode::kInvalidArgument) << c.sql;
    EXPECT_NE(r.result.status().message().find(c.message), std::string::npos)
        << c.sql << " → " << r.result.status().message();
  }
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM t_rows"), 1000);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM pg_tables WHERE tablename = 't_new'"), 0);
  // The connection is still good after all of that.
  EXPECT_EQ(Rows(e, "SELECT count(*) FROM t_rows"), "[[1000]]");
}

TEST_F(PostgresQueryTest, TimeoutStopsTheStatementAndTheEngineGoesOn) {
  QueryOptions limits;
  limits.connections = 1;
  limits.timeout = milliseconds(300);
  PostgresQueryEngine& e = Engine(limits);
  for (const std::string sql :
       {"SELECT pg_sleep(10)",
        // A statement cannot lift its own limit.
        "SELECT set_config('statement_timeout', '0', true), pg_sleep(10)"}) {
    auto t0 = Steady::now();
    QueryReply r = Ask(e, sql);
    EXPECT_LT(Steady::now() - t0, milliseconds(3000)) << sql;
    EXPECT_EQ(r.outcome, QueryOutcome::kTimeout) << sql;
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.status().code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(r.result.status().message(),
              "query ran longer than the 300 ms limit (--query-timeout) and was stopped");
    EXPECT_EQ(HttpStatusFor(r.outcome), 504);
    // The engine answers afterwards, on the same (only) connection.
    EXPECT_EQ(Rows(e, "SELECT 41 + 1"), "[[42]]");
  }
  // The server really stopped it: nothing of the reader's is running.
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM pg_stat_activity WHERE usename = '" +
                               role_->name() + "' AND state = 'active'"),
            0);
}

TEST_F(PostgresQueryTest, RowAndByteLimitsStopTheStatementEarly) {
  QueryOptions limits;
  limits.connections = 1;
  limits.max_rows = 50;
  limits.max_result_bytes = 2000;
  limits.timeout = milliseconds(20'000);
  PostgresQueryEngine& e = Engine(limits);
  auto t0 = Steady::now();
  // Five billion rows (a set-returning function in the select list streams them): refused
  // after the 51st, long before the server could make them all.
  QueryReply r = Ask(e, "SELECT generate_series(1, 5000000000) AS g");
  EXPECT_LT(Steady::now() - t0, milliseconds(5000));
  EXPECT_EQ(r.outcome, QueryOutcome::kTooManyRows);
  ASSERT_FALSE(r.result.ok());
  EXPECT_EQ(r.result.status().message(),
            "the result has more than 50 rows (--query-max-rows); add a LIMIT or aggregate");
  EXPECT_EQ(HttpStatusFor(r.outcome), 413);

  r = Ask(e, "SELECT g FROM t_rows ORDER BY g LIMIT 50");  // exactly the limit: fine
  ASSERT_TRUE(r.result.ok()) << r.result.status().ToString();
  EXPECT_EQ(r.result->row_count, 50u);

  r = Ask(e, "SELECT repeat('x', 100) FROM t_rows LIMIT 40");
  EXPECT_EQ(r.outcome, QueryOutcome::kTooManyRows);
  EXPECT_NE(r.result.status().message().find("larger than the limit of 2000 bytes of JSON"),
            std::string::npos)
      << r.result.status().ToString();
  EXPECT_EQ(Rows(e, "SELECT 1 AS one"), "[[1]]");
}

TEST_F(PostgresQueryTest, PrivilegedRolesAreRefused) {
  // The test servers' `postgres` is a superuser.
  PostgresQueryOptions o;
  o.conninfo = db_->url();
  PostgresQueryEngine superuser(o);
  Status st = superuser.Start();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("refuses to run queries as role \"postgres\": it is a superuser"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("GRANT SELECT ON ALL TABLES IN SCHEMA public TO sluice_reader"),
            std::string::npos);
  EXPECT_NE(st.message().find("--query-allow-privileged-role"), std::string::npos);
  EXPECT_EQ(superuser.Execute("SELECT 1").status().code(), StatusCode::kUnavailable);

  // Opted out (development): it runs, and is then as dangerous as the role.
  o.allow_privileged_role = true;
  PostgresQueryEngine dev(o);
  ASSERT_TRUE(dev.Start().ok());
  EXPECT_EQ(Rows(dev, "SELECT current_user::text"), "[[\"postgres\"]]");
  dev.Stop();

  // A role that may read server files is refused like a superuser.
  Exec(*admin_, "GRANT pg_read_server_files TO " + role_->name());
  PostgresQueryOptions r;
  r.conninfo = reader_;
  PostgresQueryEngine reads_files(r);
  st = reads_files.Start();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("it is a member of pg_read_server_files,"), std::string::npos)
      << st.message();
  Exec(*admin_, "REVOKE pg_read_server_files FROM " + role_->name());
  Exec(*admin_, "GRANT EXECUTE ON FUNCTION pg_read_file(text) TO " + role_->name());
  st = reads_files.Start();
  EXPECT_NE(st.message().find("it is allowed to execute pg_read_file,"), std::string::npos)
      << st.ToString();
  Exec(*admin_, "REVOKE EXECUTE ON FUNCTION pg_read_file(text) FROM " + role_->name());

  // A role made a superuser after the engine started is refused from its next query on.
  PostgresQueryEngine& e = Engine();
  EXPECT_EQ(Rows(e, "SELECT 1"), "[[1]]");
  Exec(*admin_, "ALTER ROLE " + role_->name() + " SUPERUSER");
  QueryReply refused = Ask(e, "SELECT 1");
  EXPECT_EQ(refused.outcome, QueryOutcome::kError);
  EXPECT_EQ(refused.result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.result.status().message().find("it is a superuser"), std::string::npos);
  Exec(*admin_, "ALTER ROLE " + role_->name() + " NOSUPERUSER");
  EXPECT_EQ(Rows(e, "SELECT 1"), "[[1]]");
}

TEST_F(PostgresQueryTest, NoSessionStateOutlivesAQuery) {
  QueryOptions limits;
  limits.connections = 1;
  PostgresQueryEngine& e = Engine(limits);
  EXPECT_EQ(Rows(e, "SELECT 1 FROM (SELECT pg_advisory_lock(4242)) AS locked"), "[[1]]");
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
  EXPECT_EQ(Rows(e, "SELECT set_config('application_name', 'changed', false) IS NOT NULL"),
            "[[true]]");
  EXPECT_EQ(Rows(e, "SELECT current_setting('application_name')"), "[[\"sluice\"]]");
  EXPECT_EQ(Rows(e, "SELECT current_setting('TimeZone')"), "[[\"UTC\"]]");
}

TEST_F(PostgresQueryTest, BusyWhenTheQueueIsFullAndStopEndsRunningQueries) {
  QueryOptions limits;
  limits.connections = 1;
  limits.max_queued = 1;
  PostgresQueryEngine& e = Engine(limits);
  std::promise<QueryReply> running, queued;
  auto running_reply = running.get_future();
  auto queued_reply = queued.get_future();
  e.ExecuteAsync("SELECT pg_sleep(20)", [&](QueryReply r) { running.set_value(std::move(r)); });
  // Wait until the worker runs it, so the next one waits in the queue and the one after finds
  // the queue full.
  auto deadline = Steady::now() + milliseconds(10'000);
  while (Count(*admin_, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                        "'SELECT pg_sleep(20)%' AND state = 'active'") == 0 &&
         Steady::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  e.ExecuteAsync("SELECT 2", [&](QueryReply r) { queued.set_value(std::move(r)); });
  QueryReply busy = Ask(e, "SELECT 3");
  EXPECT_EQ(busy.outcome, QueryOutcome::kBusy);
  EXPECT_EQ(busy.result.status().message(),
            "all 1 query workers are busy and 1 queries are waiting; retry shortly");
  EXPECT_EQ(HttpStatusFor(busy.outcome), 503);

  auto t0 = Steady::now();
  e.Stop();
  EXPECT_LT(Steady::now() - t0, milliseconds(3000));
  for (auto* f : {&running_reply, &queued_reply}) {
    ASSERT_EQ(f->wait_for(milliseconds(0)), std::future_status::ready);
    QueryReply stopped = f->get();
    EXPECT_EQ(stopped.outcome, QueryOutcome::kBusy);
    EXPECT_NE(stopped.result.status().message().find("shutting down"), std::string::npos)
        << stopped.result.status().ToString();
  }
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                           "'SELECT pg_sleep(20)%' AND state = 'active'"),
            0);
}

TEST_F(PostgresQueryTest, UnreachableServerIsBusyNotFatal) {
  PostgresQueryOptions o;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2";
  PostgresQueryEngine e(o);
  ASSERT_TRUE(e.Start().ok());  // logged; the rest of Sluice may start
  QueryReply r = Ask(e, "SELECT 1");
  EXPECT_EQ(r.outcome, QueryOutcome::kBusy);
  EXPECT_NE(r.result.status().message().find("PostgreSQL (--store-read) is unavailable"),
            std::string::npos)
      << r.result.status().ToString();
  PostgresQueryOptions bad;
  bad.conninfo = "postgresql://[oops";
  PostgresQueryEngine e2(bad);
  EXPECT_EQ(e2.Start().code(), StatusCode::kInvalidArgument);
}

TEST_F(PostgresQueryTest, ReplicaAnswersWhileThePrimaryTakesWrites) {
  SLUICE_PG_URL_OR_SKIP(replica, "SLUICE_TEST_PG_REPLICA_URL");
  const std::string reader = SocketConninfo(replica, db_->name(), role_->name());
  // The database, the role and its grants replicate; wait until the replica has them.
  auto deadline = Steady::now() + milliseconds(30'000);
  std::unique_ptr<pg::Connection> probe;
  while (Steady::now() < deadline) {
    auto c = pg::Connection::Open(reader);
    if (c.ok() && (*c)->Query("SELECT 1 FROM t_live").ok()) {
      probe = std::move(c).value();
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_NE(probe, nullptr) << "the replica never showed t_live to " << role_->name();

  QueryOptions limits;
  limits.connections = 2;
  PostgresQueryEngine& e = Engine(limits, reader);
  EXPECT_EQ(Rows(e, "SELECT pg_is_in_recovery()"), "[[true]]");

  std::atomic<bool> writing{true};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    auto c = Open(db_->url());
    if (!c) return;
    while (writing) {
      Status st = c->Exec("INSERT INTO t_live (id) SELECT nextval('t_live_id_seq') "
                          "FROM generate_series(1, 100)");
      if (!st.ok()) {
        ADD_FAILURE() << st.ToString();
        return;
      }
      written += 100;
    }
  });
  int64_t first = -1, last = 0;
  int queries = 0;
  const auto until = Steady::now() + milliseconds(2000);
  while (Steady::now() < until) {
    std::string rows = Rows(e, "SELECT count(*) FROM t_live");
    ASSERT_EQ(rows.rfind("[[", 0), 0u) << rows;
    ++queries;
    int64_t n = std::stoll(rows.substr(2, rows.size() - 4));
    EXPECT_GE(n, last);  // replay only moves forward
    if (first < 0) first = n;
    last = n;
  }
  writing = false;
  writer.join();
  EXPECT_GT(queries, 5);
  EXPECT_GT(last, first) << "the replica's answers never moved while the primary wrote";
  EXPECT_GT(written.load(), 0);
  // Writes are refused on the replica, and the replica catches up with every row.
  QueryReply w = Ask(e, "WITH x AS (INSERT INTO t_live DEFAULT VALUES RETURNING 1) SELECT 1");
  EXPECT_EQ(w.outcome, QueryOutcome::kInvalid);
  EXPECT_NE(w.result.status().message().find("got a statement that writes"), std::string::npos)
      << w.result.status().ToString();
  const std::string expected = "[[" + std::to_string(written.load()) + "]]";
  deadline = Steady::now() + milliseconds(30'000);
  std::string seen;
  while ((seen = Rows(e, "SELECT count(*) FROM t_live")) != expected &&
         Steady::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(seen, expected);
}

TEST_F(PostgresQueryTest, HttpRouteDispatchesByEngine) {
  auto db = duck::Database::Open(":memory:");
  ASSERT_TRUE(db.ok());
  duck_ = std::make_unique<QueryEngine>(QueryOptions{}, *db);
  ASSERT_TRUE(duck_->Start().ok());
  QueryOptions limits;
  limits.timeout = milliseconds(300);
  limits.max_rows = 10;
  PostgresQueryEngine& pg_engine = Engine(limits);
  http::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.threads = 1;
  server_ = std::make_unique<http::Server>(so);
  duck_->RegisterRoutes(server_.get(), nullptr, &pg_engine);
  ASSERT_TRUE(server_->Start().ok());
  http::TestClient client(server_->LocalAddress());
  auto post = [&](const std::string& body) {
    auto r = client.Post("/v1/query", body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  };

  auto r = post(R"j({"sql":"SELECT current_user::text AS who, count(*) AS n FROM t_rows",)j"
                R"j("engine":"postgres"})j");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(WithoutElapsed(r.body), R"j({"columns":["who","n"],"types":["VARCHAR","BIGINT"],)j"
                                    R"j("rows":[[")j" +
                                        role_->name() + R"j(",1000]],"row_count":1)j");
  // range() is DuckDB's table function; PostgreSQL has none.
  r = post(R"j({"sql":"SELECT count(*) AS n FROM range(3)","engine":"duckdb"})j");
  EXPECT_EQ(r.status, 200) << r.body;
  r = post(R"j({"sql":"SELECT count(*) AS n FROM range(3)","engine":"postgres"})j");
  EXPECT_EQ(r.status, 400) << r.body;
  r = post(R"j({"sql":"INSERT INTO t_rows VALUES (1)","engine":"postgres"})j");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"j("error":"only a single read-only SELECT is allowed; got INSERT")j"),
            std::string::npos)
      << r.body;
  r = post(R"j({"sql":"SELECT pg_sleep(5)","engine":"postgres"})j");
  EXPECT_EQ(r.status, 504) << r.body;
  r = post(R"j({"sql":"SELECT g FROM t_rows","engine":"postgres"})j");
  EXPECT_EQ(r.status, 413) << r.body;
  r = post(R"j({"sql":"SELECT * FROM nope","engine":"postgres"})j");
  EXPECT_EQ(r.status, 400) << r.body;
  r = post(R"j({"sql":"SELECT 1","engine":"oracle"})j");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"j(use \"duckdb\" or \"postgres\")j"), std::string::npos) << r.body;

  // `sluice query --server URL --engine postgres` sends the engine.
  ServerQuery q;
  q.server = "http://" + server_->LocalAddress();
  q.sql = "SELECT current_user::text AS who";
  q.engine = "postgres";
  auto body = PostQuery(q);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_NE(body->find("[[\"" + role_->name() + "\"]]"), std::string::npos) << *body;
  q.sql = "SELECT pg_sleep(5)";
  body = PostQuery(q);
  EXPECT_EQ(body.status().code(), StatusCode::kUnavailable);  // 5xx
  EXPECT_NE(body.status().message().find("(HTTP 504)"), std::string::npos)
      << body.status().ToString();
}

// ---- GET /v1/stats ---------------------------------------------------------------------------

TEST_F(PostgresQueryTest, StatsAnswerTheDuckDbEnginesDocumentForTheSameRollups) {
  const std::vector<Rollup> rows = MakeRollups();
  sluice::testing::TempDir dir;
  auto duck_store = LoadRollups(rows, dir.path());
  ASSERT_NE(duck_store, nullptr);
  // A database whose collation is a language's ("apple" < "Zebra"), not the test server's
  // C.UTF-8: the names must still come in DuckDB's byte order.
  Exec(*admin_, "ALTER TABLE events_1m ALTER COLUMN event TYPE text COLLATE \"und-x-icu\"");
  ASSERT_EQ(Count(*admin_, "SELECT ('Zebra' < 'apple' COLLATE \"und-x-icu\")::int"), 0);
  QueryEngine duck(QueryOptions{}, duck_store->database(), &clock_);
  ASSERT_TRUE(duck.Start().ok());
  PostgresQueryEngine& pg_engine = Engine();

  struct Range {
    std::optional<int64_t> from, to;
  };
  const std::vector<Range> ranges = {
      {kDay0, kDay0 + 3 * kMicrosPerHour},                            // aligned
      {kDay0 + 30'000'017, kDay0 + 5 * kMicrosPerHour + 17'000'000},  // not aligned
      {kDay0 - kMicrosPerHour, kDay0 + 2 * kMicrosPerDay},            // days
      {-kMicrosPerHour - 30'000'000, kMicrosPerHour + 1},             // 1970
      {kDay0 - 10 * kMicrosPerDay, kDay0 + 10 * kMicrosPerDay},       // 1m: too many
      {std::nullopt, std::nullopt},                                   // the last hour
      {kDay0 + 3 * kMicrosPerDay, kDay0 + 4 * kMicrosPerDay},         // no rows
  };
  const std::vector<std::optional<std::string>> events = {std::nullopt, "Signup",       "",
                                                          "Ébène",      "x' OR '1'='1", "nope"};
  int answered = 0, with_points = 0;
  for (const Range& range : ranges) {
    for (const std::string interval : {"1m", "1h", "1d", ""}) {
      for (const auto& event : events) {
        StatsRequest req;
        req.from_us = range.from;
        req.to_us = range.to;
        req.interval = interval;
        req.event = event;
        const std::string what = "from " + std::to_string(range.from.value_or(-1)) + " to " +
                                 std::to_string(range.to.value_or(-1)) + " interval '" + interval +
                                 "' event " + event.value_or("(none)");
        const std::string from_duck = StatsAnswer(duck, req);
        const std::string from_pg = StatsAnswer(pg_engine, req);
        EXPECT_EQ(from_pg, from_duck) << what;
        auto plan = PlanStats(req, clock_.NowMicros());
        if (!plan.ok()) {
          EXPECT_EQ(from_duck, std::string(StatusCodeName(StatusCode::kInvalidArgument)) + ": " +
                                   plan.status().message())
              << what;
          continue;
        }
        ++answered;
        const std::string expected = ExpectedStats(rows, *plan);
        EXPECT_EQ(from_pg, "200 " + expected) << what;
        if (expected.find("\"series\":[]") == std::string::npos) ++with_points;
      }
    }
  }
  // Most requests have something to count: the comparison is not of empty answers.
  EXPECT_GE(answered, 120);
  EXPECT_GE(with_points, 80);

  // Too many points: the same refusal from both.
  QueryOptions few;
  few.max_rows = 20;
  QueryEngine duck_few(few, duck_store->database(), &clock_);
  ASSERT_TRUE(duck_few.Start().ok());
  PostgresQueryEngine& pg_few = Engine(few);
  StatsRequest wide;
  wide.from_us = kDay0;
  wide.to_us = kDay0 + 3 * kMicrosPerHour;
  const std::string refused = StatsAnswer(duck_few, wide);
  EXPECT_EQ(refused, std::string(StatusCodeName(StatusCode::kInvalidArgument)) +
                         ": the stats have more than 20 points; filter by event or use a larger "
                         "interval");
  EXPECT_EQ(StatsAnswer(pg_few, wide), refused);
  wide.interval = "1d";
  wide.event = "Signup";
  EXPECT_EQ(StatsAnswer(pg_few, wide), StatsAnswer(duck_few, wide));
  EXPECT_EQ(StatsAnswer(pg_few, wide).rfind("200 ", 0), 0u) << StatsAnswer(pg_few, wide);
}

TEST_F(PostgresQueryTest, StatsRunWithinTheTimeoutAndTheEngineGoesOn) {
  sluice::testing::TempDir dir;
  auto duck_store = LoadRollups(MakeRollups(), dir.path());
  ASSERT_NE(duck_store, nullptr);
  QueryOptions limits;
  limits.timeout = milliseconds(300);
  PostgresQueryEngine& e = Engine(limits);
  StatsRequest req;
  req.from_us = kDay0;
  req.to_us = kDay0 + kMicrosPerDay;
  auto before = e.Stats(req);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  // A lock held elsewhere keeps the stats query waiting: the statement timeout stops it.
  auto locker = Open(db_->url());
  ASSERT_NE(locker, nullptr);
  Exec(*locker, "BEGIN; LOCK TABLE events_1m IN ACCESS EXCLUSIVE MODE");
  const auto t0 = Steady::now();
  auto blocked = e.Stats(req);
  EXPECT_LT(Steady::now() - t0, milliseconds(3000));
  EXPECT_EQ(blocked.status().code(), StatusCode::kDeadlineExceeded) << blocked.status().ToString();
  EXPECT_EQ(blocked.status().message(), StatsTimedOut(limits.timeout).message());
  Exec(*locker, "ROLLBACK");

  auto after = e.Stats(req);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, *before);
  // Nothing of the stats' transaction is left open on the server.
  EXPECT_EQ(Count(*admin_,
                  "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND usename = '" +
                      role_->name() + "' AND state <> 'idle'"),
            0);
}

TEST_F(PostgresQueryTest, StatsRouteAsksThePostgresEngineWhenTold) {
  const std::vector<Rollup> rows = MakeRollups();
  sluice::testing::TempDir dir, empty_dir;
  auto duck_store = LoadRollups(rows, dir.path());
  ASSERT_NE(duck_store, nullptr);
  // serve with --store postgres: its DuckDB database holds the Parquet history, no rollups.
  auto empty_store = OpenDuckStore(empty_dir.path());
  ASSERT_NE(empty_store, nullptr);
  QueryEngine reference(QueryOptions{}, duck_store->database(), &clock_);
  QueryEngine history_only(QueryOptions{}, empty_store->database(), &clock_);
  ASSERT_TRUE(reference.Start().ok());
  ASSERT_TRUE(history_only.Start().ok());
  PostgresQueryEngine& pg_engine = Engine();

  http::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.threads = 1;
  http::Server duck_server(so), pg_server(so);
  reference.RegisterRoutes(&duck_server, nullptr);
  history_only.RegisterRoutes(&pg_server, nullptr, &pg_engine, &pg_engine);
  ASSERT_TRUE(duck_server.Start().ok());
  ASSERT_TRUE(pg_server.Start().ok());
  http::TestClient duck_client(duck_server.LocalAddress()), pg_client(pg_server.LocalAddress());

  const std::vector<std::string> targets = {
      "/v1/stats?from=2024-05-01T00:00:00Z&to=2024-05-01T03:00:00Z&interval=1m",
      "/v1/stats?from=2024-05-01T00:00:00Z&to=2024-05-03T00:00:00Z&interval=1h&event=Signup",
      "/v1/"
      "stats?from=2024-04-30T12:00:00Z&to=2024-05-04T00:00:00Z&interval=1d&event=%C3%89b%C3%A8ne",
      "/v1/stats?from=1714521600&to=1714608000.5",
      "/v1/stats?interval=1m&event=",
      "/v1/stats",
      // The refusals, 400 with the same sentence.
      "/v1/stats?from=yesterday",
      "/v1/stats?from=1714521600&to=1714525200&interval=2m",
      "/v1/stats?from=1714521600&to=1714521600",
      "/v1/stats?from=2024-04-01T00:00:00Z&to=2024-05-01T00:00:00Z&interval=1m",
      "/v1/stats?event=%FF",
  };
  int with_counts = 0, refused = 0;
  for (const std::string& target : targets) {
    auto from_duck = duck_client.Get(target);
    auto from_pg = pg_client.Get(target);
    ASSERT_TRUE(from_duck.ok() && from_pg.ok()) << target;
    EXPECT_EQ(from_pg->status, from_duck->status) << target << ": " << from_pg->body;
    EXPECT_EQ(from_pg->body, from_duck->body) << target;
    if (from_pg->status == 400) ++refused;
    if (from_pg->status == 200 && from_pg->body.find("\"series\":[]") == std::string::npos) {
      ++with_counts;
    }
  }
  EXPECT_EQ(refused, 5);
  EXPECT_GE(with_counts, 5);
  // The history-only engine itself has nothing to count: the answers above came from PostgreSQL.
  auto own = history_only.Stats({});
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_NE(own->find("\"series\":[],\"total\":0"), std::string::npos) << *own;
  duck_server.Stop(milliseconds(1000));
  pg_server.Stop(milliseconds(1000));
}

}  // namespace
}  // namespace sluice::query
