// The PostgreSQL hot store through the real binary (issue 4): HTTP → disk buffer shards →
// loaders → PostgreSQL primary; exports and engine=postgres queries on the streaming replica.
// scripts/test.sh starts the primary and replica (SLUICE_TEST_PG_URL, SLUICE_TEST_PG_REPLICA_URL);
// each test works in a database of its own. The outage test starts a primary of its own, since
// it stops it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "load.h"
#include "pg/test_env.h"
#include "query_helpers.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

using pg::testing::TestDatabase;

std::vector<std::string> PgArgs(const TestDatabase& db, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--store", db.url(), "--query-allow-privileged-role=true",
                                   "--query-max-rows", "10000000"};
  if (!db.replica_url().empty()) {
    args.push_back("--store-read");
    args.push_back(db.replica_url());
  }
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Waits until every buffer shard's loader is caught up (from /readyz).
bool WaitCaughtUp(http::TestClient& c, std::chrono::seconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    auto r = c.Get("/readyz");
    if (r.ok() && r->body.find("\"caught_up\":false") == std::string::npos &&
        r->body.find("\"caught_up\":true") != std::string::npos &&
        r->body.find("\"depth_events\":0") != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Every acknowledged id is stored once; only events in flight at a kill may be there unacked.
void ExpectExactlyAcked(http::TestClient& c, const std::set<std::string>& acked, size_t in_flight) {
  auto ids = Query(c, "SELECT event_id FROM events", "postgres");
  ASSERT_EQ(ids.status, 200) << ids.body;
  std::multiset<std::string> stored;
  for (auto& row : ids.rows) stored.insert(row[0]);
  std::set<std::string> distinct(stored.begin(), stored.end());
  EXPECT_EQ(distinct.size(), stored.size()) << "an event stored twice";
  size_t missing = 0;
  for (const auto& id : acked) missing += distinct.count(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
  EXPECT_LE(distinct.size(), acked.size() + in_flight);
}

// The "total" of a GET /v1/stats answer; -1 (and a failure) for anything but a 200 with one.
int64_t StatsTotal(http::TestClient& c, const std::string& target) {
  auto r = c.Get(target);
  if (!r.ok() || r->status != 200) {
    ADD_FAILURE() << target << " -> " << (r.ok() ? r->body : r.status().ToString());
    return -1;
  }
  simdjson::dom::parser parser;
  int64_t total = -1;
  if (parser.parse(r->body)["total"].get(total) != simdjson::SUCCESS) {
    ADD_FAILURE() << target << " -> " << r->body;
  }
  return total;
}

class PostgresIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_PG_URL_OR_SKIP(primary, "SLUICE_TEST_PG_URL");
    SLUICE_PG_URL_OR_SKIP(replica, "SLUICE_TEST_PG_REPLICA_URL");
    db_ = std::make_unique<TestDatabase>(primary, replica);
    ASSERT_TRUE(db_->ok());
  }
  std::unique_ptr<TestDatabase> db_;
  TempDir dir_;
};

TEST_F(PostgresIntegration, TwoHundredThousandEventsInPostgresThenInParquet) {
  auto proc = SluiceProcess::Start(
      dir_.path() + "/data",
      PgArgs(*db_, {"--export-interval", "2s", "--export-grace", "500ms", "--pg-partition", "4s",
                    "--pg-partitions-ahead", "3", "--hot-retention", "1s"}));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  // Partitions are made ahead of the data: at least the 3 after the current one.
  EXPECT_GE(QueryInt(c,
                     "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                     "WHERE p.relname = 'events'",
                     "postgres"),
            4);
  const int kClients = 4, kPerClient = 50'000;
  ASSERT_EQ(
      PostBatches((*proc)->address(),
                  {.clients = kClients, .per_client = kPerClient, .batch = 500, .prefix = "p"}),
      0);
  // In PostgreSQL (on the replica)…
  EXPECT_EQ(
      WaitForInt(c, "SELECT count(*) FROM events", 200'000, std::chrono::seconds(120), "postgres"),
      200'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events", "postgres"), 200'000);
  EXPECT_EQ(QueryInt(c, "SELECT sum(count) FROM events_1m", "postgres"), 200'000);
  // GET /v1/stats counts PostgreSQL's rollups (the DuckDB database has none): the last hour
  // holds every event; a third of each client's are "Order Completed" (Batch's i % 3 == 0).
  EXPECT_EQ(StatsTotal(c, "/v1/stats"), 200'000);
  EXPECT_EQ(StatsTotal(c, "/v1/stats?interval=1h&event=Order%20Completed"),
            kClients * ((kPerClient + 2) / 3));
  // … and, once their windows close, in the Parquet files the DuckDB engine reads.
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 200'000, std::chrono::seconds(120)),
            200'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 200'000);
  // Exported windows past the retention are dropped, and with them their partitions, once the
  // data has moved past them: a later event moves it on.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  ASSERT_EQ(c.Post("/v1/batch", Batch("late-", 0, 10), kJson)->status, 200);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events WHERE event_id LIKE 'p%'", 0,
                       std::chrono::seconds(60), "postgres"),
            0)
      << "partitions of exported windows were not dropped";
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events WHERE event_id LIKE 'p%'"), 200'000)
      << "Parquet keeps them all";
}

TEST_F(PostgresIntegration, KillNineDuringLoadLeavesExactlyTheAcknowledgedEvents) {
  const std::string data = dir_.path() + "/data";
  auto proc = SluiceProcess::Start(data, PgArgs(*db_));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  std::set<std::string> acked;
  {
    Load load((*proc)->address(), LoadOptions{});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (load.Acked() < 40'000 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    (*proc)->Kill();  // the loaders are in the middle of their COPYs
    load.Stop();
    acked = load.AckedIds();
  }
  auto again = SluiceProcess::Start(data, PgArgs(*db_));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  http::TestClient c((*again)->address());
  ASSERT_TRUE(WaitCaughtUp(c, std::chrono::seconds(120)));
  // Until the replica has replayed the last commit: its count stops changing.
  int64_t last = -1, now = 0;
  for (int stable = 0; stable < 5;) {
    now = QueryInt(c, "SELECT count(*) FROM events", "postgres");
    stable = now == last ? stable + 1 : 0;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_GT(now, 0);
  ExpectExactlyAcked(c, acked, 4 * 50);
}

TEST_F(PostgresIntegration, AnEventIsQueryableOnTheReplicaOneSecondAfterItsAck) {
  auto proc = SluiceProcess::Start(dir_.path() + "/data", PgArgs(*db_));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  for (int i = 0; i < 5; ++i) {
    const std::string id = "fresh-" + std::to_string(i);
    auto r =
        c.Post("/v1/track", R"({"userId":"u","event":"Probe","messageId":")" + id + R"("})", kJson);
    ASSERT_TRUE(r.ok() && r->status == 200);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events WHERE event_id = '" + id + "'", "postgres"),
              1)
        << id << " not visible on the replica 1 s after its acknowledgement";
  }
}

// A PostgreSQL primary (and optionally a streaming replica) of the test's own, started with
// scripts/pg.sh, for tests that stop it or pause its replay (the shared ones serve other tests
// at the same time). Stopped when the object goes.
class OwnCluster {
 public:
  explicit OwnCluster(const std::string& dir, bool replica = false) : dir_(dir) {
    std::string out;
    if (SluiceProcess::RunProgram({"chmod", "755", dir}, &out) != 0) {
      ADD_FAILURE() << out;
      return;
    }
    primary_port_ = Sh("pg_free_port");
    if (Sh("pg_start_primary " + dir + "/p " + primary_port_).empty() && !ok_) return;
    if (replica) {
      replica_port_ = Sh("pg_free_port");
      Sh("pg_start_replica " + primary_port_ + " " + dir + "/r " + replica_port_);
    }
  }
  ~OwnCluster() { Sh("pg_stop " + dir_ + "/r; pg_stop " + dir_ + "/p"); }
  bool ok() const { return ok_; }
  std::string primary_url() const { return Url(primary_port_); }
  std::string replica_url() const { return Url(replica_port_); }
  void StopPrimary() { Sh("pg_stop " + dir_ + "/p"); }
  // Runs `sql` on the replica with psql.
  void OnReplica(const std::string& sql) {
    Sh("\"$(pg_bindir)/psql\" -q -h 127.0.0.1 -p " + replica_port_ +
       " -U postgres -d sluice -c \"" + sql + "\"");
  }
  void StartPrimary() { Sh("pg_start " + dir_ + "/p " + primary_port_); }

  // Runs `command` after sourcing scripts/pg.sh; returns its first line of output. A failure
  // fails the test and clears ok().
  std::string Sh(const std::string& command) {
    std::string out;
    int rc = SluiceProcess::RunProgram(
        {"bash", "-c", "source " + SourceDir() + "/scripts/pg.sh && " + command}, &out);
    if (rc != 0) {
      ok_ = false;
      ADD_FAILURE() << command << " -> " << rc << ": " << out;
    }
    return out.substr(0, out.find_first_of("\r\n"));
  }

 private:
  static std::string Url(const std::string& port) {
    return "postgresql://postgres@127.0.0.1:" + port + "/sluice";
  }
  std::string dir_, primary_port_, replica_port_;
  bool ok_ = true;
};

// PostgreSQL stopped for 30 s under load: ingest keeps acknowledging into the buffer, the
// loaders retry and /readyz says why; after the restart every acknowledged event is stored
// once.
TEST(PostgresOutage, ThirtySecondsDownUnderLoadLosesAndDoublesNothing) {
  SLUICE_PG_URL_OR_SKIP(shared, "SLUICE_TEST_PG_URL");  // only to honour SLUICE_REQUIRE_PG
  TempDir dir;
  OwnCluster pg(dir.path());
  ASSERT_TRUE(pg.ok());
  auto proc = SluiceProcess::Start(
      dir.path() + "/data", {"--store", pg.primary_url(), "--query-allow-privileged-role=true",
                             "--query-max-rows", "10000000"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());

  Load load(
      (*proc)->address(),
      LoadOptions{.clients = 2, .batch = 50, .pad = "", .pause = std::chrono::milliseconds(20)});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  pg.StopPrimary();
  const size_t acked_at_stop = load.Acked();
  std::this_thread::sleep_for(std::chrono::seconds(30));
  // Still acknowledging into the buffer; the loaders say what is wrong.
  EXPECT_GT(load.Acked(), acked_at_stop + 1000);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_NE(ready->body.find("\"last_error\""), std::string::npos) << ready->body;
  EXPECT_NE(ready->body.find("\"caught_up\":false"), std::string::npos) << ready->body;
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->body.find("sluice_loader_errors_total 0\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("sluice_loader_errors_total"), std::string::npos);

  pg.StartPrimary();
  ASSERT_TRUE(pg.ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  load.Stop();
  EXPECT_EQ(load.refused(), 0);
  ASSERT_TRUE(WaitCaughtUp(c, std::chrono::seconds(120)));
  const std::set<std::string> acked = load.AckedIds();
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", int64_t(acked.size()),
                       std::chrono::seconds(60), "postgres"),
            int64_t(acked.size()));
  ExpectExactlyAcked(c, acked, 0);
}

// Replay paused on the replica across a window close: the exporter waits for the replica to
// reach the primary's position instead of writing a file without the window's last rows, and
// the file is complete once replay resumes.
TEST(PostgresReplica, ExportWaitsForAPausedReplicaAndTheFileIsComplete) {
  SLUICE_PG_URL_OR_SKIP(shared, "SLUICE_TEST_PG_URL");  // only to honour SLUICE_REQUIRE_PG
  TempDir dir;
  OwnCluster pg(dir.path(), /*replica=*/true);
  ASSERT_TRUE(pg.ok());
  auto proc = SluiceProcess::Start(
      dir.path() + "/data",
      {"--store", pg.primary_url(), "--store-read", pg.replica_url(),
       "--query-allow-privileged-role=true", "--export-interval", "2s", "--export-grace", "200ms"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  pg.OnReplica("SELECT pg_wal_replay_pause()");
  for (int i = 0; i < 1000; i += 100) {
    ASSERT_EQ(c.Post("/v1/batch", Batch("paused-", i, 100), kJson)->status, 200);
  }
  // Every window of these events closes within ~2.5 s; the export must wait for the replica.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events"), 0) << "exported from a stale replica";
  EXPECT_NE((*proc)->Log().find("waiting for the read replica to replay"), std::string::npos)
      << (*proc)->Log();
  pg.OnReplica("SELECT pg_wal_replay_resume()");
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 1000, std::chrono::seconds(60)), 1000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 1000);
}

}  // namespace
}  // namespace sluice::testing
