// PostgresStore beyond the HotStore contract (hot_store_contract_test.cc), against the real
// primary and streaming replica (SLUICE_TEST_PG_URL, SLUICE_TEST_PG_REPLICA_URL): migrations,
// partitions made ahead and dropped after export, the export waiting for replica replay,
// exactly-once retries, reconnects, and what PostgreSQL refuses.
#include "store/postgres_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "common/temp_dir.h"
#include "event/parser.h"
#include "pg/test_env.h"
#include "store/store_test_util.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // store_test_util.h

constexpr int64_t kHour = 60 * kMinute;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_PG_URL_OR_SKIP(url, "SLUICE_TEST_PG_URL");
    SLUICE_PG_URL_OR_SKIP(replica, "SLUICE_TEST_PG_REPLICA_URL");
    db_ = std::make_unique<pg::testing::TestDatabase>(url, replica);
    ASSERT_TRUE(db_->ok());
    objects_ = tmp_.path() + "/objects";
    fs::create_directories(objects_ + "/events");
    auto conn = pg::Connection::Open(db_->url());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    primary_ = std::move(*conn);
    auto rconn = pg::Connection::Open(db_->replica_url());
    ASSERT_TRUE(rconn.ok()) << rconn.status().ToString();
    replica_ = std::move(*rconn);
  }
  void TearDown() override {
    // Never leave the shared replica paused.
    if (replica_) (void)replica_->Exec("SELECT pg_wal_replay_resume()");
  }

  PostgresStoreOptions Options() const {
    PostgresStoreOptions o;
    o.url = db_->url();
    o.read_url = db_->replica_url();
    o.window_us = kWindow;
    o.parquet_glob = objects_ + "/events/**/*.parquet";
    o.tmp_dir = tmp_.path() + "/tmp";
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<PostgresStore> Open(const PostgresStoreOptions& o) {
    auto s = PostgresStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<PostgresStore> Open() { return Open(Options()); }

  std::string Text(pg::Connection& c, const std::string& sql) {
    auto r = c.Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() > 0 ? std::string(r->Text(0, 0)) : "<none>";
  }
  std::string Text(const std::string& sql) { return Text(*primary_, sql); }
  int64_t Count(const std::string& sql) { return std::stoll(Text(sql)); }

  std::set<std::string> Partitions() {
    auto r = primary_->Query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.emplace(r->Text(i, 0));
    return out;
  }

  std::string ParquetPath(int64_t start_us) { return testing::ParquetPath(objects_, start_us); }
  uint64_t ExportAndMark(PostgresStore& s, int64_t start_us) {
    auto rows = s.ExportWindowToParquet(start_us, ParquetPath(start_us), {});
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return 0;
    Status st = s.MarkExported(start_us, *rows);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *rows;
  }
  static uint64_t ParquetRows(const std::string& path) {
    auto db = duck::Database::Open(":memory:");
    auto conn = duck::Connection::Open(*db);
    auto r = (*conn)->Query("SELECT count(DISTINCT event_id) FROM read_parquet(" +
                            duck::QuoteLiteral(path) + ")");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? static_cast<uint64_t>(r->Int64(0, 0)) : 0;
  }

  sluice::testing::TempDir tmp_{"sluice-pg-store"};
  std::string objects_;
  mutable ManualClock clock_{kT0 + 100 * kHour};  // "now" is well after the test data
  std::unique_ptr<pg::testing::TestDatabase> db_;
  std::unique_ptr<pg::Connection> primary_, replica_;
};

TEST_F(PostgresStoreTest, MigrationsAreVersionedAndAppliedOnce) {
  auto applied = MigratePostgres(db_->url());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, 1);
  EXPECT_EQ(*MigratePostgres(db_->url()), 0);
  auto store = Open();  // applies nothing more
  ASSERT_TRUE(store);
  EXPECT_EQ(Text("SELECT string_agg(version::text, ',') FROM sluice_schema_migrations"), "1");
  // The payload columns are json, lz4-compressed, in every partition.
  EXPECT_EQ(Text("SELECT string_agg(DISTINCT format_type(atttypid, atttypmod) || ':' || "
                 "attcompression::text, ',') FROM pg_attribute WHERE attname IN "
                 "('properties', 'traits', 'context') AND attrelid IN (SELECT inhrelid "
                 "FROM pg_inherits WHERE inhparent = 'events'::regclass)"),
            "json:l");
  // A database migrated by a newer Sluice is refused with a sentence.
  ASSERT_TRUE(primary_->Exec("INSERT INTO sluice_schema_migrations (version, name) "
                             "VALUES (99, 'from the future')")
                  .ok());
  store.reset();
  auto newer = PostgresStore::Open(Options());
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("newer"), std::string::npos)
      << newer.status().ToString();
}

TEST_F(PostgresStoreTest, BadOptionsAndAnUnreachableServerAreClearErrors) {
  PostgresStoreOptions o = Options();
  o.partition_us = 25 * kMinute;  // not a multiple of the 10-minute window
  auto bad = PostgresStore::Open(o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("multiple"), std::string::npos);
  o = Options();
  o.url = "postgresql://postgres@127.0.0.1:1/sluice?connect_timeout=2";
  auto down = PostgresStore::Open(o);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(down.status().message().find("127.0.0.1"), std::string::npos)
      << down.status().ToString();
}

TEST_F(PostgresStoreTest, PartitionsAreCreatedAhead) {
  auto store = Open();
  ASSERT_TRUE(store);
  // At Open: the partition of "now" and two more.
  const int64_t now_hour = (kT0 + 100 * kHour) / kHour * kHour;
  std::set<std::string> want = {PostgresStore::PartitionName(now_hour),
                                PostgresStore::PartitionName(now_hour + kHour),
                                PostgresStore::PartitionName(now_hour + 2 * kHour)};
  EXPECT_EQ(Partitions(), want);
  EXPECT_EQ(PostgresStore::PartitionName(kT0), "events_p_20240501_120000");
  // A commit for an older hour makes that hour's partition and the two after it.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 3, kT0 + 59 * kMinute, kMinute)).ok());
  for (int64_t h : {kT0, kT0 + kHour, kT0 + 2 * kHour, kT0 + 3 * kHour}) {
    want.insert(PostgresStore::PartitionName(h));
  }
  EXPECT_EQ(Partitions(), want);  // 12:59, 13:00, 13:01 -> 12:00..15:00
  EXPECT_EQ(Count("SELECT count(*) FROM events_p_20240501_120000"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events_p_20240501_130000"), 2);
  // A reopened store knows them and makes no new ones.
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(Partitions(), want);
}

// A fresh partition gets statistics from the store once it has analyze_after_rows rows (a
// manual ANALYZE, counted in analyze_count; autovacuum's would be autoanalyze_count), and only
// once; with 0 the store leaves it to autovacuum.
TEST_F(PostgresStoreTest, AFreshPartitionIsAnalyzedOnceItHoldsEnoughRows) {
  constexpr int64_t kSecond = 1'000'000;
  // pg_stat_user_tables.analyze_count of `table`, once it is `want` or after 1.5 s: a
  // backend's counters reach the shared statistics when it goes idle, within about a second.
  auto analyze_count = [&](const std::string& table, int64_t want) {
    int64_t n = -1;
    for (int i = 0; i < 15 && n != want; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      n = Count("SELECT COALESCE(max(analyze_count), 0) FROM pg_stat_user_tables "
                "WHERE relname = '" + table + "'");
    }
    return n;
  };
  PostgresStoreOptions o = Options();
  o.analyze_after_rows = 100;
  auto store = Open(o);
  ASSERT_TRUE(store);
  const std::string p12 = PostgresStore::PartitionName(kT0);
  const std::string p13 = PostgresStore::PartitionName(kT0 + kHour);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(60, "a", 0, 60, kT0, kSecond)).ok());
  EXPECT_EQ(analyze_count(p12, 1), 0);  // 60 rows: not yet
  ASSERT_TRUE(store->CommitBatch(EventsBatch(120, "a", 60, 60, kT0 + kMinute, kSecond)).ok());
  EXPECT_EQ(analyze_count(p12, 1), 1);  // 120 rows
  EXPECT_EQ(Text("SELECT reltuples::bigint FROM pg_class WHERE relname = '" + p12 + "'"), "120");
  ASSERT_TRUE(store->CommitBatch(EventsBatch(300, "a", 120, 180, kT0 + 2 * kMinute, kSecond)).ok());
  EXPECT_EQ(analyze_count(p12, 2), 1);  // once per partition: autovacuum keeps it current after
  EXPECT_EQ(analyze_count(p13, 1), 0);

  store.reset();
  o.analyze_after_rows = 0;
  store = Open(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(500, "a", 300, 200, kT0 + kHour, kSecond)).ok());
  EXPECT_EQ(analyze_count(p13, 1), 0);
}

// Six 10-minute windows fill an hour's partition; once all six are exported and dropped
// (and the data has moved past the hour), the partition is detached and dropped. Late rows
// for one of its windows bring the partition back with the window's rows from Parquet.
TEST_F(PostgresStoreTest, APartitionIsDroppedWhenAllItsWindowsAreAndComesBackForLateRows) {
  auto store = Open();
  ASSERT_TRUE(store);
  // 600 events over 12:00-13:00, 60 more at 13:00-13:10.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 600, kT0, 6 * kSecond)).ok());
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "b", 0, 60, kT0 + kHour, 10 * kSecond)).ok());
  ASSERT_EQ(store->Windows()->size(), 7u);
  const std::string p12 = PostgresStore::PartitionName(kT0);
  for (int w = 0; w < 6; ++w) {
    const int64_t start = kT0 + w * kWindow;
    ASSERT_EQ(ExportAndMark(*store, start), 100u);
    ASSERT_TRUE(store->DropWindow(start).ok());
    // Rows stay until the last window of the partition goes.
    EXPECT_EQ(Partitions().count(p12), w < 5 ? 1u : 0u) << "after window " << w;
  }
  EXPECT_EQ(Text("SELECT to_regclass('" + p12 + "') IS NULL"), "t");
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE received_at < '2024-05-01T13:00:00Z'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM sluice_windows WHERE purged"), 6);
  EXPECT_EQ(store->Windows()->size(), 1u);  // 13:00
  // Dropped windows' ids still come from Parquet.
  std::set<std::string> ids;
  ASSERT_TRUE(store->ForEachEventIdSince(kT0 + 55 * kMinute, [&](std::string_view id) {
                     ids.emplace(id);
                   }).ok());
  EXPECT_EQ(ids.size(), 50u + 60u);  // a550..a599 from Parquet, b0..b59 from PostgreSQL

  // A late row for 12:20: the partition is made again and the window's 100 rows come back.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(3, "late", 0, 1, kT0 + 25 * kMinute, 1)).ok());
  EXPECT_EQ(Partitions().count(p12), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM " + p12), 101);
  auto windows = store->Windows();
  ASSERT_TRUE(windows.ok());
  EXPECT_EQ(windows->front(), (WindowInfo{kT0 + 2 * kWindow, kT0 + 3 * kWindow, 101, false}));
  ASSERT_EQ(ExportAndMark(*store, kT0 + 2 * kWindow), 101u);
  EXPECT_EQ(ParquetRows(ParquetPath(kT0 + 2 * kWindow)), 101u);
  // Dropped again, the partition goes again (its other windows never came back).
  ASSERT_TRUE(store->DropWindow(kT0 + 2 * kWindow).ok());
  EXPECT_EQ(Partitions().count(p12), 0u);
}

// A partition drop interrupted after DETACH … CONCURRENTLY is finished by the next Open.
TEST_F(PostgresStoreTest, AnInterruptedPartitionDropIsFinishedAtOpen) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 6, kT0, kWindow)).ok());
    ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "b", 0, 1, kT0 + kHour, 1)).ok());
    for (int w = 0; w < 5; ++w) {
      ASSERT_EQ(ExportAndMark(*store, kT0 + w * kWindow), 1u);
      ASSERT_TRUE(store->DropWindow(kT0 + w * kWindow).ok());
    }
    ASSERT_EQ(ExportAndMark(*store, kT0 + 5 * kWindow), 1u);
    // The crash: the last window is marked dropped and the partition detached, nothing more.
    ASSERT_TRUE(primary_->Exec("UPDATE sluice_windows SET dropped = true WHERE start_us = " +
                               std::to_string(kT0 + 5 * kWindow))
                    .ok());
  }
  const std::string p12 = PostgresStore::PartitionName(kT0);
  ASSERT_TRUE(primary_->Exec("ALTER TABLE events DETACH PARTITION " + p12).ok());
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(Text("SELECT to_regclass('" + p12 + "') IS NULL"), "t");
  EXPECT_EQ(Count("SELECT count(*) FROM sluice_partitions WHERE name = '" + p12 + "'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM sluice_windows WHERE purged"), 6);
}

TEST_F(PostgresStoreTest, ExportWaitsForTheReplicaToReplayTheWindow) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 100, kT0, kSecond)).ok());
  // Until the replica has replayed the migration, "events" does not exist there: poll
  // without failing, then assert once.
  for (int i = 0; i < 1500; ++i) {
    auto r = replica_->Query("SELECT count(*) FROM events");
    if (r.ok() && r->rows() == 1 && r->Text(0, 0) == "100") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(Text(*replica_, "SELECT count(*) FROM events"), "100");
  // Replay paused: the replica does not get the next commit.
  ASSERT_TRUE(replica_->Exec("SELECT pg_wal_replay_pause()").ok());
  for (int i = 0; i < 100 && Text(*replica_, "SELECT pg_get_wal_replay_pause_state()") != "paused";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(Text(*replica_, "SELECT pg_get_wal_replay_pause_state()"), "paused");
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "b", 0, 50, kT0 + 200 * kSecond, kSecond)).ok());
  EXPECT_EQ(Text(*replica_, "SELECT count(*) FROM events"), "100");  // the replica lags

  auto exported = std::async(std::launch::async, [&] {
    return store->ExportWindowToParquet(kT0, ParquetPath(kT0), {});
  });
  EXPECT_EQ(exported.wait_for(std::chrono::seconds(1)), std::future_status::timeout)
      << "the export did not wait for the replica";
  ASSERT_TRUE(replica_->Exec("SELECT pg_wal_replay_resume()").ok());
  ASSERT_EQ(exported.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto rows = exported.get();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 150u);
  EXPECT_EQ(ParquetRows(ParquetPath(kT0)), 150u);
  EXPECT_TRUE(store->MarkExported(kT0, 150).ok());
}

TEST_F(PostgresStoreTest, ExportGivesUpOnAPausedReplicaWithASentence) {
  PostgresStoreOptions o = Options();
  o.replica_wait_us = 500'000;
  auto store = Open(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(replica_->Exec("SELECT pg_wal_replay_pause()").ok());
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 10, kT0, kSecond)).ok());
  auto rows = store->ExportWindowToParquet(kT0, ParquetPath(kT0), {});
  EXPECT_EQ(rows.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(rows.status().message().find("replay"), std::string::npos)
      << rows.status().ToString();
  EXPECT_FALSE(fs::exists(ParquetPath(kT0)));
  ASSERT_TRUE(replica_->Exec("SELECT pg_wal_replay_resume()").ok());
  auto again = store->ExportWindowToParquet(kT0, ParquetPath(kT0), {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 10u);
}

// The exporter's pace callback hears the rows written so far, chunk by chunk, and what it
// waits holds the export back.
TEST_F(PostgresStoreTest, ExportReportsProgressToThePaceCallback) {
  auto store = Open(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(5000, "a", 0, 5000, kT0, 1000)).ok());
  std::vector<uint64_t> seen;
  ParquetOptions o;
  o.pace = [&](uint64_t rows_so_far) {
    seen.push_back(rows_so_far);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto rows = store->ExportWindowToParquet(kT0, ParquetPath(kT0), o);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 5000u);
  EXPECT_EQ(ParquetRows(ParquetPath(kT0)), 5000u);
  ASSERT_GE(seen.size(), 2u) << "one call per chunk of rows, not one at the end";
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
  EXPECT_EQ(seen.back(), 5000u);
  EXPECT_GE(took, std::chrono::milliseconds(100) * seen.size());
}

// Without --store-read, the primary serves the export.
TEST_F(PostgresStoreTest, WithoutAReplicaThePrimaryIsRead) {
  PostgresStoreOptions o = Options();
  o.read_url = "";
  auto store = Open(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 10, kT0, kSecond)).ok());
  EXPECT_EQ(ExportAndMark(*store, kT0), 10u);
}

// A real PostgreSQL error in the middle of a commit (a CHECK on the rollups refuses the
// batch after its rows were copied) leaves nothing of the batch.
TEST_F(PostgresStoreTest, APostgresErrorMidCommitLeavesNothing) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 10, kT0, kSecond)).ok());
  ASSERT_TRUE(primary_->Exec("ALTER TABLE events_1m ADD CONSTRAINT small CHECK (count < 100)").ok());
  Batch b = EventsBatch(2, "b", 0, 2000, kT0 + kSecond, 1000);
  b.events.push_back(MakeEvent("next-window", kT0 + kWindow + 1));
  b.rejections.push_back({kT0, "web", "bad", "{"});
  b.rollups.push_back({kT0, "track", "Product Viewed", 2001});
  Status st = store->CommitBatch(b);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(pg::SqlStateOf(st), "23514");
  EXPECT_EQ(*store->CommittedOffset("disk"), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 10);
  EXPECT_EQ(Count("SELECT count(*) FROM events_rejected"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM sluice_windows"), 1);
  std::vector<WindowInfo> want = {{kT0, kT0 + kWindow, 10, false}};
  EXPECT_EQ(*store->Windows(), want);
  ASSERT_TRUE(primary_->Exec("ALTER TABLE events_1m DROP CONSTRAINT small").ok());
  ASSERT_TRUE(store->CommitBatch(b).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 2011);
  EXPECT_EQ(store->Windows()->size(), 2u);
}

// A batch retried after its COMMIT went through (the answer was lost) is not stored twice.
TEST_F(PostgresStoreTest, ARetriedCommittedBatchIsStoredOnce) {
  auto store = Open();
  ASSERT_TRUE(store);
  Batch b = EventsBatch(7, "a", 0, 100, kT0, kSecond);
  b.rollups.push_back({kT0, "track", "Product Viewed", 100});
  ASSERT_TRUE(store->CommitBatch(b).ok());
  ASSERT_TRUE(store->CommitBatch(b).ok());  // the loader's retry
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 100);
  EXPECT_EQ(Count("SELECT sum(count) FROM events_1m"), 100);
  EXPECT_EQ(store->Windows()->front().rows, 100u);
  Batch older = EventsBatch(5, "old", 0, 1, kT0, 1);
  ASSERT_TRUE(store->CommitBatch(older).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 100);
  EXPECT_EQ(*store->CommittedOffset("disk"), 7u);
}

// The server ends every connection of the store (as a restart does): the next calls
// reconnect, and nothing is lost or doubled.
TEST_F(PostgresStoreTest, ReconnectsAfterTheServerDropsItsConnections) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 10, kT0, kSecond)).ok());
  ASSERT_EQ(ExportAndMark(*store, kT0), 10u);  // opens the read connection too
  // Every session of the store's, not this test's own.
  const std::string mine = Text("SELECT pg_backend_pid()") + ", " +
                           Text(*replica_, "SELECT pg_backend_pid()");
  auto kill = [&] {
    for (const std::string& url : {db_->url(), db_->replica_url()}) {
      auto c = pg::Connection::Open(url);
      ASSERT_TRUE(c.ok());
      ASSERT_TRUE((*c)->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                             "application_name = 'sluice' AND datname = current_database() "
                             "AND pid NOT IN (pg_backend_pid(), " + mine + ")")
                      .ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  kill();
  // A retry loop, as the loader's: at most one failure, and it says Unavailable.
  auto commit = [&](const Batch& b) {
    Status st = store->CommitBatch(b);
    if (!st.ok()) {
      EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
      st = store->CommitBatch(b);
    }
    return st;
  };
  ASSERT_TRUE(commit(EventsBatch(2, "b", 0, 10, kT0 + kWindow, kSecond)).ok());
  kill();
  auto rows = store->ExportWindowToParquet(kT0 + kWindow, ParquetPath(kT0 + kWindow), {});
  if (!rows.ok()) {
    EXPECT_EQ(rows.status().code(), StatusCode::kUnavailable) << rows.status().ToString();
    rows = store->ExportWindowToParquet(kT0 + kWindow, ParquetPath(kT0 + kWindow), {});
  }
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 10u);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 20);
  EXPECT_EQ(*store->CommittedOffset("disk"), 2u);
}

TEST_F(PostgresStoreTest, NulBytesAndBadUtf8BecomeReplacementCharacters) {
  auto store = Open();
  ASSERT_TRUE(store);
  Batch b;
  b.end_offset = 1;
  b.rejections.push_back({kT0, "web", "not JSON", std::string("\xff{\0x", 4)});
  event::Event e = MakeEvent("nul", kT0);
  e.user_id = std::string("a\0b", 3);
  e.properties = R"({"s":"\u0000 is fine in json"})";
  b.events.push_back(e);
  ASSERT_TRUE(store->CommitBatch(b).ok());
  EXPECT_EQ(Text("SELECT body FROM events_rejected"), "\xef\xbf\xbd{\xef\xbf\xbdx");
  EXPECT_EQ(Text("SELECT user_id FROM events"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(Text("SELECT properties::text FROM events"), e.properties);
}

}  // namespace
}  // namespace sluice::store
