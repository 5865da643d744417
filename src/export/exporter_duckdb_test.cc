// End to end: the Exporter against a real DuckDbStore and LocalDir, the files read back with
// DuckDB's read_parquet as a Hive-partitioned table.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "duck/duck.h"
#include "export/exporter.h"
#include "export/manifest.h"
#include "export/sha256.h"
#include "objstore/local_dir.h"
#include "objstore/test_util.h"
#include "store/duckdb_store.h"

namespace sluice::exporter {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kWindow = 10 * 60 * kSec;
constexpr int64_t kGrace = 30 * kSec;
constexpr int64_t kT0 = 1714564800LL * kSec;  // 2024-05-01T12:00:00Z

event::Event MakeEvent(const std::string& id, int64_t received_at_us) {
  event::Event e;
  e.event_id = id;
  e.type = "track";
  e.event = "Order Completed";
  e.user_id = "user-" + id;
  e.event_time_us = received_at_us - 2 * kSec;
  e.sent_at_us = received_at_us - kSec;
  e.received_at_us = received_at_us;
  e.properties = R"({"total":12.5,"id":")" + id + R"("})";
  e.context = R"({"library":{"name":"test"}})";
  e.source = "web";
  return e;
}

TEST(ExporterDuckDbTest, ExportsWindowsReadableAsHiveTable) {
  objstore::testing::TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  auto objects = objstore::LocalDir::Open(data_dir + "/objects");
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();

  store::DuckDbStoreOptions so;
  so.path = data_dir + "/hot.duckdb";
  so.window_us = kWindow;
  so.parquet_glob = data_dir + "/objects/events/**/*.parquet";
  so.sandbox.allowed_directories = {data_dir};
  so.sandbox.memory_limit = "512MB";
  so.threads = 1;
  auto store = store::DuckDbStore::Open(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();

  // Three events in 12:00-12:10, two in 12:10-12:20 (one exactly on the boundary), one in
  // 13:00-13:10, which stays open.
  store::Batch batch;
  batch.shard = "disk";
  batch.end_offset = 6;
  batch.events = {MakeEvent("a1", kT0 + kSec),
                  MakeEvent("a2", kT0 + 5 * 60 * kSec),
                  MakeEvent("a3", kT0 + kWindow - 1),
                  MakeEvent("b1", kT0 + kWindow),
                  MakeEvent("b2", kT0 + kWindow + 3 * kSec),
                  MakeEvent("c1", kT0 + 6 * kWindow + kSec)};
  ASSERT_TRUE((*store)->CommitBatch(batch).ok());

  ManualClock clock(kT0 + 2 * kWindow + kGrace);
  int64_t watermark = kT0 + 2 * kWindow + kGrace;
  ExporterOptions eo;
  eo.window_us = kWindow;
  eo.grace_us = kGrace;
  eo.hot_retention_us = 3600 * kSec;
  eo.tmp_dir = data_dir + "/export-tmp";
  Exporter exporter(
      eo, store->get(), objects->get(), [&] { return watermark; }, &clock);

  auto report = exporter.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_TRUE(report->error.ok()) << report->error.ToString();
  ASSERT_EQ(report->exported.size(), 2u) << FormatReport(*report);
  EXPECT_EQ(report->exported[0].rows, 3u);
  EXPECT_EQ(report->exported[1].rows, 2u);

  // The store now reads those windows from Parquet.
  auto windows = (*store)->Windows();
  ASSERT_TRUE(windows.ok());
  ASSERT_EQ(windows->size(), 3u);
  EXPECT_TRUE((*windows)[0].exported);
  EXPECT_TRUE((*windows)[1].exported);
  EXPECT_FALSE((*windows)[2].exported);

  // The manifest matches the files.
  auto entries = ReadManifest(**objects);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  for (const ManifestEntry& e : *entries) {
    auto digest = DigestFile(*(*objects)->LocalPath(e.key));
    ASSERT_TRUE(digest.ok()) << digest.status().ToString();
    EXPECT_EQ(digest->bytes, e.bytes);
    EXPECT_EQ(digest->sha256, e.sha256);
  }
  EXPECT_EQ((*entries)[0].key, "events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet");
  EXPECT_EQ((*entries)[1].key, "events/dt=2024-05-01/hour=12/events-20240501T1210Z-disk.parquet");

  // Read the files back as a Hive-partitioned table, with a DuckDB of our own.
  auto db = duck::Database::Open(":memory:");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto conn = duck::Connection::Open(*db);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE((*conn)->Exec("SET TimeZone = 'UTC'").ok());
  const std::string table = "read_parquet(" +
                            duck::QuoteLiteral(data_dir + "/objects/events/**/*.parquet") +
                            ", hive_partitioning = true)";
  auto cols =
      (*conn)->Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + table + ")");
  ASSERT_TRUE(cols.ok()) << cols.status().ToString();
  std::vector<std::string> names;
  for (uint64_t r = 0; r < cols->rows(); ++r) names.push_back(cols->String(0, r));
  EXPECT_EQ(names, (std::vector<std::string>{"event_id", "type", "event", "user_id", "anonymous_id",
                                             "event_time", "sent_at", "received_at", "properties",
                                             "traits", "context", "source", "dt", "hour"}));

  auto rows = (*conn)->Query(
      "SELECT event_id, CAST(dt AS VARCHAR), CAST(hour AS VARCHAR), "
      "epoch_us(received_at) FROM " +
      table + " ORDER BY received_at");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->rows(), 5u);
  const std::vector<std::string> ids = {"a1", "a2", "a3", "b1", "b2"};
  for (uint64_t r = 0; r < 5; ++r) {
    EXPECT_EQ(rows->String(0, r), ids[r]);
    EXPECT_EQ(rows->String(1, r), "2024-05-01");
    EXPECT_EQ(rows->String(2, r), "12");
  }
  EXPECT_EQ(rows->Int64(3, 0), kT0 + kSec);

  // The store's `events` view counts every event once: exported windows from Parquet, the
  // open one from its hot table.
  auto view_conn = duck::Connection::Open((*store)->database());
  ASSERT_TRUE(view_conn.ok());
  auto count = (*view_conn)->Query("SELECT count(*), count(DISTINCT event_id) FROM events");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->Int64(0, 0), 6);
  EXPECT_EQ(count->Int64(1, 0), 6);

  // Past the retention, the exported windows' hot rows go; the view still has every event.
  clock.Set(kT0 + 2 * kWindow + 3600 * kSec);
  auto later = exporter.RunOnce();
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  ASSERT_TRUE(later->error.ok()) << later->error.ToString();
  EXPECT_EQ(later->dropped, (std::vector<int64_t>{kT0, kT0 + kWindow}));
  windows = (*store)->Windows();
  ASSERT_TRUE(windows.ok());
  ASSERT_EQ(windows->size(), 1u);
  EXPECT_EQ((*windows)[0].start_us, kT0 + 6 * kWindow);
  count = (*view_conn)->Query("SELECT count(*) FROM events");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->Int64(0, 0), 6);
  EXPECT_TRUE(objstore::testing::AllPathsUnder(eo.tmp_dir).empty());
}

}  // namespace
}  // namespace sluice::exporter
