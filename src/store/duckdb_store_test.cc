// DuckDbStore beyond the HotStore contract (hot_store_contract_test.cc runs the common
// behaviour against every store): the `events` view, DuckDB's tables, sandbox and space reuse.
#include "store/duckdb_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/metrics.h"
#include "store/store_test_util.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // store_test_util.h

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sluice-store-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class DuckDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_.path() + "/data";
    objects_ = tmp_.path() + "/objects";
    fs::create_directories(data_);
    fs::create_directories(objects_ + "/events");
  }

  DuckDbStoreOptions Options() const {
    DuckDbStoreOptions o;
    o.path = data_ + "/hot.duckdb";
    o.window_us = kWindow;
    o.parquet_glob = objects_ + "/events/**/*.parquet";
    o.sandbox.allowed_directories = {data_, objects_};
    o.sandbox.memory_limit = "1GB";
    o.threads = 2;
    return o;
  }

  std::unique_ptr<DuckDbStore> Open(const DuckDbStoreOptions& o) {
    auto s = DuckDbStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<DuckDbStore> Open() { return Open(Options()); }

  // Runs `sql` on a fresh connection to the store's database, as the query engine would.
  static duck::QueryResult Query(DuckDbStore& store, const std::string& sql) {
    auto conn = duck::Connection::Open(store.database());
    EXPECT_TRUE(conn.ok());
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : duck::QueryResult();
  }
  static int64_t Scalar(DuckDbStore& store, const std::string& sql) {
    auto r = Query(store, sql);
    return r.rows() ? r.Int64(0, 0) : -1;
  }
  static std::string Text(DuckDbStore& store, const std::string& sql) {
    auto r = Query(store, sql);
    return r.rows() ? r.String(0, 0) : "<no rows>";
  }
  // count(*) and count(DISTINCT event_id) of the events view.
  static std::pair<int64_t, int64_t> Counts(DuckDbStore& store) {
    auto r = Query(store, "SELECT count(*), count(DISTINCT event_id) FROM events");
    return {r.Int64(0, 0), r.Int64(1, 0)};
  }

  std::string ParquetPath(int64_t start_us) const {
    std::string name = DuckDbStore::WindowTableName(start_us).substr(9);  // 20240501T1200Z
    std::string dt = name.substr(0, 4) + "-" + name.substr(4, 2) + "-" + name.substr(6, 2);
    std::string dir = objects_ + "/events/dt=" + dt + "/hour=" + name.substr(9, 2);
    fs::create_directories(dir);
    return dir + "/events-" + name + "-disk.parquet";
  }

  static std::vector<WindowInfo> WindowsOf(DuckDbStore& store) {
    auto w = store.Windows();
    EXPECT_TRUE(w.ok());
    return w.ok() ? *w : std::vector<WindowInfo>{};
  }

  static int64_t WindowTables(DuckDbStore& store) {
    return Scalar(store, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'events_w_%'");
  }

  TempDir tmp_;
  std::string data_, objects_;
};

TEST_F(DuckDbStoreTest, CommitsAndReadsBackExactRows) {
  auto store = Open();
  ASSERT_TRUE(store);
  Batch b;
  b.shard = "disk";
  b.end_offset = 2;
  event::Event full = MakeEvent("id-1", kT0 + 123456, 7);
  full.sent_at_us = kT0 + 1;
  full.event_time_us = kT0 - 999'999;
  full.traits = R"({"plan":"pro","logins":3})";
  b.events.push_back(full);
  event::Event sparse;
  sparse.event_id = "id-2";
  sparse.type = "identify";
  sparse.anonymous_id = "anon-2";
  sparse.event_time_us = kT0 + 5;
  sparse.received_at_us = kT0 + 6;
  b.events.push_back(sparse);
  ASSERT_TRUE(store->CommitBatch(b).ok());

  auto r = Query(*store,
                 "SELECT event_id, type, event, user_id, anonymous_id, event_time::VARCHAR, "
                 "sent_at::VARCHAR, received_at::VARCHAR, properties, traits, context, source, "
                 "epoch_us(event_time), epoch_us(sent_at), epoch_us(received_at), "
                 "properties->>'$.sku', properties->'$.variant'->>'$.size' "
                 "FROM events ORDER BY event_id");
  ASSERT_EQ(r.rows(), 2u);
  EXPECT_EQ(r.String(0, 0), "id-1");
  EXPECT_EQ(r.String(1, 0), "track");
  EXPECT_EQ(r.String(2, 0), "Product Viewed");
  EXPECT_EQ(r.String(3, 0), full.user_id);
  EXPECT_EQ(r.String(4, 0), "anon-id-1");
  EXPECT_EQ(r.String(5, 0), "2024-05-01 11:59:59.000001+00");
  EXPECT_EQ(r.String(6, 0), "2024-05-01 12:00:00.000001+00");
  EXPECT_EQ(r.String(7, 0), "2024-05-01 12:00:00.123456+00");
  EXPECT_EQ(r.String(8, 0), full.properties);
  EXPECT_EQ(r.String(9, 0), full.traits);
  EXPECT_EQ(r.String(10, 0), full.context);
  EXPECT_EQ(r.String(11, 0), "web");
  EXPECT_EQ(r.Int64(12, 0), full.event_time_us);
  EXPECT_EQ(r.Int64(13, 0), *full.sent_at_us);
  EXPECT_EQ(r.Int64(14, 0), full.received_at_us);
  EXPECT_EQ(r.String(15, 0), "sku-7");
  EXPECT_EQ(r.String(16, 0), "42");
  // Empty strings and a missing sentAt are NULL.
  EXPECT_EQ(r.String(0, 1), "id-2");
  EXPECT_EQ(r.String(1, 1), "identify");
  for (uint64_t col : {2, 3, 6, 8, 9, 10, 11, 13, 15}) {
    EXPECT_TRUE(r.IsNull(col, 1)) << "column " << col;
  }
  EXPECT_EQ(r.Int64(12, 1), kT0 + 5);
  EXPECT_EQ(r.Int64(14, 1), kT0 + 6);

  // The view's columns and types are the contract.
  auto d = Query(*store,
                 "SELECT column_name, data_type FROM information_schema.columns "
                 "WHERE table_name = 'events' ORDER BY ordinal_position");
  std::string cols;
  for (uint64_t i = 0; i < d.rows(); ++i) cols += d.String(0, i) + " " + d.String(1, i) + ", ";
  EXPECT_EQ(cols,
            "event_id VARCHAR, type VARCHAR, event VARCHAR, user_id VARCHAR, anonymous_id "
            "VARCHAR, event_time TIMESTAMP WITH TIME ZONE, sent_at TIMESTAMP WITH TIME ZONE, "
            "received_at TIMESTAMP WITH TIME ZONE, properties JSON, traits JSON, context JSON, "
            "source VARCHAR, ");
  // Every connection renders TIMESTAMPTZ in UTC.
  EXPECT_EQ(Text(*store, "SELECT current_setting('TimeZone')"), "UTC");
  EXPECT_EQ(Text(*store, "SELECT TIMESTAMPTZ '2024-05-01 14:00:00+02'::VARCHAR"),
            "2024-05-01 12:00:00+00");
}

TEST_F(DuckDbStoreTest, EmptyStoreHasATypedEmptyView) {
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(Counts(*store), std::make_pair(int64_t{0}, int64_t{0}));
  EXPECT_EQ(Text(*store, "SELECT typeof(properties) FROM events UNION ALL SELECT 'JSON'"), "JSON");
  EXPECT_EQ(Scalar(*store,
                   "SELECT count(*) FROM information_schema.columns WHERE "
                   "table_name = 'events'"),
            12);
  EXPECT_EQ(*store->CommittedOffset("disk"), 0u);
  EXPECT_EQ(*store->MaxReceivedAt(), 0);
  EXPECT_TRUE(WindowsOf(*store).empty());
}

TEST_F(DuckDbStoreTest, AFailedCommitLeavesNothing) {
  std::string fail_at;
  DuckDbStoreOptions o = Options();
  o.fault_injection = [&fail_at](std::string_view step) {
    return step == fail_at ? Status::IOError("injected at " + std::string(step)) : Status::OK();
  };
  auto store = Open(o);
  ASSERT_TRUE(store);
  auto& errors = metrics::Default().GetCounter("sluice_store_commit_errors_total", "");
  const uint64_t errors_before = errors.Value();

  auto full_batch = [](uint64_t offset, const std::string& prefix, int64_t start) {
    Batch b = EventsBatch(offset, prefix, 0, 3000, start, 1000);  // > one 2048-row chunk
    b.rejections.push_back({start, "web", "bad", "{"});
    b.rollups.push_back({start, "track", "Product Viewed", 3000});
    return b;
  };
  for (const char* step : {"appended", "before_commit"}) {
    fail_at = step;
    Status st = store->CommitBatch(full_batch(5, "a", kW1));
    EXPECT_EQ(st.code(), StatusCode::kIOError) << step;
    EXPECT_EQ(*store->CommittedOffset("disk"), 0u);
    EXPECT_EQ(*store->MaxReceivedAt(), 0);
    EXPECT_TRUE(WindowsOf(*store).empty());
    EXPECT_EQ(WindowTables(*store), 0);
    EXPECT_EQ(Counts(*store).first, 0);
    EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events_1m"), 0);
    EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events_rejected"), 0);
  }
  EXPECT_EQ(errors.Value(), errors_before + 2);

  fail_at = "";
  ASSERT_TRUE(store->CommitBatch(full_batch(5, "a", kW1)).ok());
  EXPECT_EQ(Counts(*store).first, 3000);
  const std::string view_before = store->ViewSql();

  // A failure in a commit that would add a window and touch an existing one.
  fail_at = "before_commit";
  Batch b = full_batch(9, "b", kW1 + kMinute);
  b.events.push_back(MakeEvent("late", kW2 + kSecond));
  EXPECT_FALSE(store->CommitBatch(b).ok());
  EXPECT_EQ(*store->CommittedOffset("disk"), 5u);
  std::vector<WindowInfo> want = {{kW1, kW1 + kWindow, 3000, false}};
  EXPECT_EQ(WindowsOf(*store), want);
  EXPECT_EQ(Counts(*store).first, 3000);
  EXPECT_EQ(Scalar(*store, "SELECT sum(count) FROM events_1m"), 3000);
  EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events_rejected"), 1);
  EXPECT_EQ(WindowTables(*store), 1);
  EXPECT_EQ(store->ViewSql(), view_before);

  // A real DuckDB error: the window's table dropped behind the store's back.
  fail_at = "";
  {
    auto conn = duck::Connection::Open(store->database());
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Exec("DROP TABLE " + DuckDbStore::WindowTableName(kW1)).ok());
  }
  Status st = store->CommitBatch(full_batch(12, "c", kW1));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(DuckDbStore::WindowTableName(kW1)), std::string::npos)
      << st.ToString();
  EXPECT_EQ(*store->CommittedOffset("disk"), 5u);
  EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events_rejected"), 1);
  EXPECT_EQ(Scalar(*store, "SELECT sum(count) FROM events_1m"), 3000);
}

TEST_F(DuckDbStoreTest, RollupsMergeAcrossBatches) {
  auto store = Open();
  ASSERT_TRUE(store);
  const int64_t m0 = kT0 - 60 * kMinute, m1 = kT0, m2 = kT0 + kMinute;
  Batch a;
  a.end_offset = 1;
  a.rollups = {{m1, "track", "Product Viewed", 2}, {m1, "page", "", 1}, {m2, "track", "B", 4}};
  ASSERT_TRUE(store->CommitBatch(a).ok());
  Batch b;
  b.end_offset = 2;
  // Same keys again, a late minute, and one key twice in one batch.
  b.rollups = {{m1, "track", "Product Viewed", 3},
               {m1, "page", "", 4},
               {m0, "track", "Product Viewed", 1},
               {m2, "track", "B", 1},
               {m2, "track", "B", 2}};
  ASSERT_TRUE(store->CommitBatch(b).ok());
  Batch c;
  c.end_offset = 3;
  c.rollups = {{m0, "track", "Product Viewed", 10}, {m1, "page", "Home", 1}};
  ASSERT_TRUE(store->CommitBatch(c).ok());

  auto r = Query(*store,
                 "SELECT epoch_us(minute), type, event, count, typeof(count) "
                 "FROM events_1m ORDER BY 1, 2, 3 NULLS FIRST");
  ASSERT_EQ(r.rows(), 5u);
  auto row = [&](uint64_t i) {
    return std::to_string(r.Int64(0, i)) + " " + r.String(1, i) + " " +
           (r.IsNull(2, i) ? "NULL" : r.String(2, i)) + " " + std::to_string(r.Int64(3, i));
  };
  EXPECT_EQ(row(0), std::to_string(m0) + " track Product Viewed 11");
  EXPECT_EQ(row(1), std::to_string(m1) + " page NULL 5");
  EXPECT_EQ(row(2), std::to_string(m1) + " page Home 1");
  EXPECT_EQ(row(3), std::to_string(m1) + " track Product Viewed 5");
  EXPECT_EQ(row(4), std::to_string(m2) + " track B 7");
  EXPECT_EQ(r.String(4, 0), "BIGINT");
  EXPECT_EQ(Text(*store, "SELECT min(minute)::VARCHAR FROM events_1m"), "2024-05-01 11:00:00+00");
}

TEST_F(DuckDbStoreTest, RejectionsAndBadUtf8AreStored) {
  auto store = Open();
  ASSERT_TRUE(store);
  auto& rejected = metrics::Default().GetCounter("sluice_store_committed_rejections_total", "");
  const uint64_t before = rejected.Value();
  Batch b;
  b.end_offset = 3;
  b.rejections.push_back({kT0 + 42, "web", "event 0: missing userId", R"({"type":"track"})"});
  b.rejections.push_back({kT0 + 43, "", "not JSON", std::string("\xff\xfe{\0x", 5)});
  event::Event e = MakeEvent("utf", kT0);
  e.user_id = "caf\xc3\xa9-\xc3";  // valid é, then a truncated sequence
  b.events.push_back(e);
  ASSERT_TRUE(store->CommitBatch(b).ok());
  EXPECT_EQ(rejected.Value(), before + 2);

  auto r = Query(*store,
                 "SELECT received_at::VARCHAR, source, error, body, strlen(body) "
                 "FROM events_rejected ORDER BY received_at");
  ASSERT_EQ(r.rows(), 2u);
  EXPECT_EQ(r.String(0, 0), "2024-05-01 12:00:00.000042+00");
  EXPECT_EQ(r.String(1, 0), "web");
  EXPECT_EQ(r.String(2, 0), "event 0: missing userId");
  EXPECT_EQ(r.String(3, 0), R"({"type":"track"})");
  EXPECT_TRUE(r.IsNull(1, 1));
  // Each bad byte became U+FFFD; the NUL byte is kept.
  EXPECT_EQ(r.Int64(4, 1), 3 + 3 + 1 + 1 + 1);
  EXPECT_EQ(Text(*store, "SELECT user_id FROM events"), "caf\xc3\xa9-\xef\xbf\xbd");
}

TEST_F(DuckDbStoreTest, WindowsCatalog) {
  auto store = Open();
  ASSERT_TRUE(store);
  Batch b = EventsBatch(1, "a", 0, 5, kW1 + kWindow - 2 * kSecond, kSecond);  // 2 in W1, 3 in W2
  b.events.push_back(MakeEvent("x", kW3 + 1));
  ASSERT_TRUE(store->CommitBatch(b).ok());
  std::vector<WindowInfo> want = {
      {kW1, kW2, 2, false}, {kW2, kW3, 3, false}, {kW3, kW3 + kWindow, 1, false}};
  EXPECT_EQ(WindowsOf(*store), want);
  EXPECT_EQ(WindowTables(*store), 3);
  EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events_w_20240501T1210Z"), 3);
  EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM sluice_windows WHERE NOT exported"), 3);
  EXPECT_EQ(DuckDbStore::WindowTableName(kT0), "events_w_20240501T1200Z");
  EXPECT_EQ(DuckDbStore::WindowTableName(kT0 + 30 * kSecond), "events_w_20240501T120030Z");
  EXPECT_EQ(DuckDbStore::WindowTableName(0), "events_w_19700101T0000Z");
}

TEST_F(DuckDbStoreTest, ViewCountsEveryEventOnceThroughTheLifecycle) {
  auto store = Open();
  ASSERT_TRUE(store);
  auto expect_counts = [&](int64_t n, const char* step) {
    EXPECT_EQ(Counts(*store), std::make_pair(n, n)) << step << "\n" << store->ViewSql();
  };
  Batch a = EventsBatch(1, "a", 0, 100, kW1, 5 * kSecond);  // 100 rows over 500 s of W1
  Batch b = EventsBatch(1, "b", 0, 50, kW2, kSecond);
  a.events.insert(a.events.end(), b.events.begin(), b.events.end());
  ASSERT_TRUE(store->CommitBatch(a).ok());
  expect_counts(150, "hot only");
  EXPECT_EQ(store->ViewSql().find("read_parquet"), std::string::npos);

  // Export W1 into the history; until MarkExported it is read from its hot table only, even
  // once the view has a Parquet branch (a commit that makes W3 rebuilds it).
  auto rows = store->ExportWindowToParquet(kW1, ParquetPath(kW1), {});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 100u);
  expect_counts(150, "W1 exported, not marked");
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "c", 0, 10, kW3, kSecond)).ok());
  EXPECT_NE(store->ViewSql().find("read_parquet"), std::string::npos);
  expect_counts(160, "W1 exported, not marked, Parquet branch on");

  EXPECT_EQ(store->MarkExported(kW1, 99).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->MarkExported(kW1 + kMinute, 100).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store->MarkExported(kW1, 100).ok());
  ASSERT_TRUE(store->MarkExported(kW1, 100).ok());  // again: no-op
  expect_counts(160, "W1 marked");
  EXPECT_TRUE(WindowsOf(*store)[0].exported);
  // W1 is now read from Parquet: a row slipped into its hot table behind the store's back
  // does not show.
  {
    auto conn = duck::Connection::Open(store->database());
    ASSERT_TRUE((*conn)
                    ->Exec("INSERT INTO events_w_20240501T1200Z (event_id, received_at) "
                           "VALUES ('ghost', TIMESTAMPTZ '2024-05-01 12:00:01+00')")
                    .ok());
  }
  expect_counts(160, "W1 marked, ghost row in hot");
  // JSON paths work on Parquet rows and hot rows alike.
  EXPECT_EQ(Scalar(*store, "SELECT count(*) FROM events WHERE properties->>'$.sku' = 'sku-7'"),
            3);  // a7 (Parquet), b7 and c7 (hot)
  EXPECT_EQ(Text(*store, "SELECT DISTINCT typeof(properties) FROM events"), "JSON");

  EXPECT_EQ(store->DropWindow(kW2).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  EXPECT_EQ(store->DropWindow(kW1).code(), StatusCode::kNotFound);
  expect_counts(160, "W1 dropped");
  EXPECT_EQ(WindowTables(*store), 2);
  EXPECT_EQ(WindowsOf(*store).front().start_us, kW2);
  EXPECT_EQ(store->ExportWindowToParquet(kW1, ParquetPath(kW1), {}).status().code(),
            StatusCode::kNotFound);

  // W2: exported, then late rows before it is marked: the count it was exported with is
  // refused, the view keeps reading the hot rows (not the stale file).
  ASSERT_EQ(*store->ExportWindowToParquet(kW2, ParquetPath(kW2), {}), 50u);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(3, "b", 50, 5, kW2 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(store->MarkExported(kW2, 50).code(), StatusCode::kFailedPrecondition);
  expect_counts(165, "W2 stale file");
  ASSERT_EQ(*store->ExportWindowToParquet(kW2, ParquetPath(kW2), {}), 55u);
  ASSERT_TRUE(store->MarkExported(kW2, 55).ok());
  expect_counts(165, "W2 marked");

  // Late rows into an exported window un-export it.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(4, "b", 55, 2, kW2 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(WindowsOf(*store).front(), (WindowInfo{kW2, kW3, 57, false}));
  expect_counts(167, "W2 late rows");
  ASSERT_EQ(*store->ExportWindowToParquet(kW2, ParquetPath(kW2), {}), 57u);
  ASSERT_TRUE(store->MarkExported(kW2, 57).ok());
  expect_counts(167, "W2 re-exported");

  // Late rows into the dropped W1: its rows come back from Parquet, so the re-export (same
  // file) still has all of them.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(5, "a", 100, 1, kW1 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(WindowsOf(*store).front(), (WindowInfo{kW1, kW2, 101, false}));
  expect_counts(168, "W1 late rows after drop");
  ASSERT_EQ(*store->ExportWindowToParquet(kW1, ParquetPath(kW1), {}), 101u);
  ASSERT_TRUE(store->MarkExported(kW1, 101).ok());
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  ASSERT_TRUE(store->DropWindow(kW2).ok());
  expect_counts(168, "W1, W2 dropped");
  EXPECT_EQ(Scalar(*store,
                   "SELECT count(*) FROM events WHERE received_at < TIMESTAMPTZ "
                   "'2024-05-01 12:10:00+00'"),
            101);

  // The view and catalog survive a reopen.
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  expect_counts(168, "reopened");
  std::vector<WindowInfo> want = {{kW3, kW3 + kWindow, 10, false}};
  EXPECT_EQ(WindowsOf(*store), want);
  // The reopened store still knows W1 was dropped.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(6, "a", 101, 1, kW1 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(WindowsOf(*store).front(), (WindowInfo{kW1, kW2, 102, false}));
  expect_counts(169, "W1 late rows after reopen");
}

// Windows whose commits came in received_at order are exported without a sort; the file is
// in order either way.
TEST_F(DuckDbStoreTest, InOrderWindowsExportInOrder) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 3000, kW1, 1000)).ok());
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "b", 0, 3000, kW1 + 3000 * 1000, 1000)).ok());
  EXPECT_EQ(Text(*store, "SELECT in_order FROM sluice_windows"), "true");
  const std::string path = ParquetPath(kW1);
  ASSERT_EQ(*store->ExportWindowToParquet(kW1, path, {}), 6000u);
  EXPECT_EQ(Scalar(*store,
                   "SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER () "
                   "AS back FROM read_parquet(" +
                       duck::QuoteLiteral(path) + ")) WHERE back"),
            0);
  // One late row: no longer in order, and the export sorts.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(3, "c", 0, 1, kW1 + 5, 1)).ok());
  EXPECT_EQ(Text(*store, "SELECT in_order FROM sluice_windows"), "false");
  ASSERT_EQ(*store->ExportWindowToParquet(kW1, path, {}), 6001u);
  EXPECT_EQ(Scalar(*store,
                   "SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER () "
                   "AS back FROM read_parquet(" +
                       duck::QuoteLiteral(path) + ")) WHERE back"),
            0);
  store.reset();
  store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(Text(*store, "SELECT in_order FROM sluice_windows"), "false");
}

// The export reads slices of rows: the pace callback is called after each with the rows so
// far, and rows committed while it runs (here: from inside the callback, between slices) are
// not in the file, whose rows are those of the moment it started.
TEST_F(DuckDbStoreTest, ExportReportsProgressToThePaceCallbackAndIsOneSnapshot) {
  DuckDbStoreOptions so = Options();
  so.export_slice_rows = 2048;
  auto store = Open(so);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 5000, kW1, 1000)).ok());
  std::vector<uint64_t> seen;
  ParquetOptions o;
  o.pace = [&](uint64_t rows_so_far) {
    if (seen.empty()) {
      Status st = store->CommitBatch(EventsBatch(2, "b", 0, 7, kW1 + 5000 * 1000, 1000));
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    seen.push_back(rows_so_far);
  };
  const std::string path = ParquetPath(kW1);
  auto rows = store->ExportWindowToParquet(kW1, path, o);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 5000u);
  EXPECT_EQ(Scalar(*store, "SELECT count(DISTINCT event_id) FROM read_parquet(" +
                              duck::QuoteLiteral(path) + ") WHERE event_id LIKE 'a%'"),
            5000);
  EXPECT_EQ(Scalar(*store,
                   "SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER () "
                   "AS back FROM read_parquet(" +
                       duck::QuoteLiteral(path) + ")) WHERE back"),
            0);
  EXPECT_EQ(seen, (std::vector<uint64_t>{2048, 4096, 5000})) << "one call per slice";
  EXPECT_EQ(WindowsOf(*store)[0].rows, 5007u);
  EXPECT_EQ(store->MarkExported(kW1, *rows).code(), StatusCode::kFailedPrecondition);
  // The next export has them all.
  ASSERT_EQ(*store->ExportWindowToParquet(kW1, path, {}), 5007u);
  EXPECT_TRUE(store->MarkExported(kW1, 5007).ok());
}

TEST_F(DuckDbStoreTest, SandboxIsInForce) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 3, kW1, 1)).ok());
  auto conn = duck::Connection::Open(store->database());
  ASSERT_TRUE(conn.ok());
  auto passwd = (*conn)->Query("SELECT * FROM read_csv('/etc/passwd')");
  EXPECT_FALSE(passwd.ok());
  EXPECT_NE(passwd.status().message().find("Permission"), std::string::npos)
      << passwd.status().ToString();
  EXPECT_FALSE((*conn)->Exec("SET enable_external_access = true").ok());
  EXPECT_FALSE((*conn)->Exec("SET TimeZone = 'Europe/Berlin'").ok());
  const std::string outside = tmp_.path() + "/outside";
  fs::create_directories(outside);
  EXPECT_FALSE((*conn)->Exec("COPY events TO '" + outside + "/x.csv'").ok());
  auto exported = store->ExportWindowToParquet(kW1, outside + "/x.parquet", {});
  EXPECT_FALSE(exported.ok());
  EXPECT_FALSE(fs::exists(outside + "/x.parquet"));
  // Inside the sandbox it works.
  EXPECT_TRUE(store->ExportWindowToParquet(kW1, data_ + "/x.parquet", {}).ok());
}

TEST_F(DuckDbStoreTest, RefreshViewPicksUpParquetWrittenByAnotherStore) {
  // As with --store postgres: this store holds no rows; its view is the exported history.
  DuckDbStoreOptions o = Options();
  o.path = data_ + "/history.duckdb";
  auto history = Open(o);
  ASSERT_TRUE(history);
  auto writer = Open();
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->CommitBatch(EventsBatch(1, "a", 0, 3, kW1, 1)).ok());
  ASSERT_TRUE(writer->ExportWindowToParquet(kW1, ParquetPath(kW1), {}).ok());
  EXPECT_EQ(Counts(*history).first, 0);  // the view was built before the file existed
  ASSERT_TRUE(history->RefreshView().ok());
  EXPECT_EQ(Counts(*history), std::make_pair(int64_t{3}, int64_t{3}));
}

TEST_F(DuckDbStoreTest, MarkExportedNeedsTheHistory) {
  DuckDbStoreOptions o = Options();
  o.parquet_glob = "";
  auto store = Open(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 3, kW1, 1)).ok());
  ASSERT_TRUE(store->ExportWindowToParquet(kW1, ParquetPath(kW1), {}).ok());
  EXPECT_EQ(store->MarkExported(kW1, 3).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Counts(*store).first, 3);
}

TEST_F(DuckDbStoreTest, ExportRunsBesideCommitsAndQueries) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "seed", 0, 10, kW1, 1)).ok());
  std::atomic<bool> done{false};
  std::atomic<int> export_errors{0}, query_errors{0};
  std::thread exporter([&] {
    while (!done) {
      auto rows = store->ExportWindowToParquet(kW1, data_ + "/concurrent.parquet", {});
      if (!rows.ok() || *rows < 10) ++export_errors;
    }
  });
  std::thread reader([&] {
    auto conn = duck::Connection::Open(store->database());
    while (!done) {
      auto r = (*conn)->Query("SELECT count(*) FROM events");
      if (!r.ok() || r->Int64(0, 0) < 10) ++query_errors;
    }
  });
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store
                    ->CommitBatch(
                        EventsBatch(2 + i, "b" + std::to_string(i) + "-", 0, 200, kW1 + kSecond, 1))
                    .ok());
  }
  done = true;
  exporter.join();
  reader.join();
  EXPECT_EQ(export_errors.load(), 0);
  EXPECT_EQ(query_errors.load(), 0);
  EXPECT_EQ(Counts(*store).first, 4010);
  EXPECT_EQ(*store->CommittedOffset("disk"), 21u);
}

// Window tables are created, exported and dropped over and over (two windows hot at a time,
// as with a hot retention); the file must not keep growing: DuckDB reuses a dropped table's
// blocks after the checkpoint DropWindow runs.
TEST_F(DuckDbStoreTest, DiskSpaceIsReusedAfterDrops) {
  auto store = Open();
  ASSERT_TRUE(store);
  std::vector<uint64_t> sizes;
  for (int cycle = 0; cycle < 20; ++cycle) {
    const int64_t w = kW1 + cycle * kWindow;
    for (int part = 0; part < 2; ++part) {  // two commits per window
      Batch b = EventsBatch(cycle * 2 + part + 1, "c" + std::to_string(cycle) + "-", part * 2000,
                            2000, w + part * 200 * kSecond, 100'000);
      ASSERT_TRUE(store->CommitBatch(b).ok());
    }
    auto rows = store->ExportWindowToParquet(w, ParquetPath(w), {});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    ASSERT_TRUE(store->MarkExported(w, *rows).ok());
    if (cycle >= 2) {
      ASSERT_TRUE(store->DropWindow(w - 2 * kWindow).ok());
    }
    sizes.push_back(*store->DiskBytes());
  }
  std::string trace;
  for (uint64_t s : sizes) trace += std::to_string(s / 1024) + " ";
  RecordProperty("disk_kib_per_cycle", trace);
  // Each window is ~1.3 MB in the file; without reuse cycle 19 would be ~10x cycle 4. With
  // reuse the size wanders with the free list (observed 4-7 MB) but does not trend up.
  const uint64_t settled = *std::max_element(sizes.begin(), sizes.begin() + 5);
  for (size_t i = 5; i < sizes.size(); ++i) {
    EXPECT_LE(sizes[i], settled + settled / 2) << "cycle " << i << ": " << trace;
  }
  EXPECT_EQ(Counts(*store), std::make_pair(int64_t{80'000}, int64_t{80'000}));
  EXPECT_EQ(WindowTables(*store), 2);
}

// A reader's open transaction makes DuckDB refuse DropWindow's CHECKPOINT; the drop still
// succeeds and the next commit checkpoints (the WAL is then empty).
TEST_F(DuckDbStoreTest, CheckpointAfterDropIsRetriedByCommits) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 500, kW1, kSecond)).ok());
  auto rows = store->ExportWindowToParquet(kW1, ParquetPath(kW1), {});
  ASSERT_TRUE(rows.ok());
  ASSERT_TRUE(store->MarkExported(kW1, *rows).ok());
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "b", 0, 500, kW2, kSecond)).ok());
  const std::string wal = data_ + "/hot.duckdb.wal";
  auto reader = duck::Connection::Open(store->database());
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Exec("BEGIN TRANSACTION").ok());
  EXPECT_EQ((*reader)->Query("SELECT count(*) FROM events")->Int64(0, 0), 1000);
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  EXPECT_GT(fs::exists(wal) ? fs::file_size(wal) : 0, 0u);  // not checkpointed
  EXPECT_EQ((*reader)->Query("SELECT count(*) FROM events")->Int64(0, 0), 1000);
  ASSERT_TRUE((*reader)->Exec("COMMIT").ok());
  ASSERT_TRUE(store->CommitBatch(EventsBatch(3, "c", 0, 1, kW2, kSecond)).ok());
  EXPECT_EQ(fs::exists(wal) ? fs::file_size(wal) : 0, 0u);  // checkpointed
  EXPECT_EQ(Counts(*store).first, 1001);
}

}  // namespace
}  // namespace sluice::store
