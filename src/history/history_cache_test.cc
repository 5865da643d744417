// HistoryCache against a LocalDir standing in for the bucket (the S3/Azure path is the same
// ObjectStore interface; tests/integration/history_s3_test.cc runs it against s3rver).
#include "history/history_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/temp_dir.h"
#include "export/manifest.h"
#include "export/sha256.h"
#include "objstore/local_dir.h"

namespace sluice::history {
namespace {

namespace fs = std::filesystem;
using exporter::ManifestEntry;
using Steady = std::chrono::steady_clock;

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kWindow = 10 * kMinute;
constexpr int64_t kT0 = 1714564800'000'000;  // 2024-05-01T12:00:00Z

// Counts the requests that reach the real store it wraps.
class CountingStore final : public objstore::ObjectStore {
 public:
  explicit CountingStore(objstore::ObjectStore* inner) : inner_(inner) {}
  std::string Url() const override { return inner_->Url(); }
  Status PutFile(const std::string& k, const std::string& p) override {
    return inner_->PutFile(k, p);
  }
  Status PutBytes(const std::string& k, const std::string& d) override {
    return inner_->PutBytes(k, d);
  }
  Status GetFile(const std::string& k, const std::string& p) override {
    ++get_files;
    // A slow download: the object's bytes as they were when it started, delivered late.
    Status st = inner_->GetFile(k, p);
    if (get_delay.count() > 0) std::this_thread::sleep_for(get_delay);
    return st;
  }
  Result<std::string> GetBytes(const std::string& k) override {
    ++get_bytes;
    return inner_->GetBytes(k);
  }
  Result<objstore::ObjectInfo> Head(const std::string& k) override { return inner_->Head(k); }
  Result<std::vector<objstore::ObjectInfo>> List(const std::string& p) override {
    return inner_->List(p);
  }
  Status Delete(const std::string& k) override { return inner_->Delete(k); }
  std::optional<std::string> LocalPath(const std::string&) const override { return std::nullopt; }

  std::atomic<int> get_files{0};
  std::atomic<int> get_bytes{0};
  std::chrono::milliseconds get_delay{0};

 private:
  objstore::ObjectStore* inner_;
};

class HistoryCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = objstore::LocalDir::Open(tmp_.path() + "/bucket");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    bucket_ = std::move(dir).value();
    remote_ = std::make_unique<CountingStore>(bucket_.get());
  }

  // Uploads a "Parquet file" of `bytes` bytes for the window at `start` with its manifest
  // entry, as the exporter does; returns the entry.
  ManifestEntry Export(int64_t start, size_t bytes, char fill = 'x') {
    const std::string local = tmp_.path() + "/upload.bin";
    // Replaced, not rewritten in place, as the exporter does: the bucket may have linked the
    // last one (ObjectStore::PutFile).
    fs::remove(local);
    {
      std::ofstream out(local, std::ios::binary | std::ios::trunc);
      out << std::string(bytes, fill);
    }
    ManifestEntry e;
    e.window_start_us = start;
    e.window_end_us = start + kWindow;
    e.key = exporter::ParquetKey(start, "disk");
    e.rows = bytes;
    auto d = exporter::DigestFile(local);
    EXPECT_TRUE(d.ok());
    e.bytes = d->bytes;
    e.sha256 = d->sha256;
    e.exported_at_us = start + kWindow;
    EXPECT_TRUE(bucket_->PutFile(e.key, local).ok());
    EXPECT_TRUE(bucket_->PutBytes(exporter::ManifestKey(start, "disk"), exporter::ToJson(e)).ok());
    return e;
  }

  HistoryCacheOptions Options(uint64_t max_bytes = 1 << 20) {
    HistoryCacheOptions o;
    o.dir = tmp_.path() + "/cache";
    o.max_bytes = max_bytes;
    o.evict_wait = std::chrono::milliseconds(50);
    o.fetch_newest_at_open = false;
    o.on_first_file = [this] {
      ++first_file_calls_;
      return Status::OK();
    };
    return o;
  }
  std::unique_ptr<HistoryCache> Open(HistoryCacheOptions o) {
    auto c = HistoryCache::Open(std::move(o), remote_.get());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static Steady::time_point Later() { return Steady::now() + std::chrono::seconds(30); }
  bool Cached(const HistoryCache& c, int64_t start) const {
    return fs::exists(fs::path(c.EventsDir()).parent_path() / exporter::ParquetKey(start, "disk"));
  }

  sluice::testing::TempDir tmp_{"sluice-history"};
  std::unique_ptr<objstore::LocalDir> bucket_;
  std::unique_ptr<CountingStore> remote_;
  std::atomic<int> first_file_calls_{0};
};

TEST_F(HistoryCacheTest, AnEmptyBucketNeedsNothing) {
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  auto lease = cache->Acquire(INT64_MIN, INT64_MAX, Later());
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(cache->Stats().files, 0u);
  EXPECT_EQ(remote_->get_files, 0);
  EXPECT_EQ(first_file_calls_, 0);
}

TEST_F(HistoryCacheTest, ARangeFetchesOnlyTheWindowsItOverlaps) {
  for (int i = 0; i < 12; ++i) Export(kT0 + i * kWindow, 1000 + i);  // two hours
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  EXPECT_EQ(cache->Stats().entries, 12u);
  {
    // 13:00 to 14:00: windows 6..11.
    auto lease = cache->Acquire(kT0 + 60 * kMinute, kT0 + 120 * kMinute, Later());
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_EQ(remote_->get_files, 6);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(Cached(*cache, kT0 + i * kWindow), i >= 6) << i;
    EXPECT_EQ(first_file_calls_, 1);
    // The bytes are the object's.
    const auto path = fs::path(cache->EventsDir()).parent_path() /
                      exporter::ParquetKey(kT0 + 6 * kWindow, "disk");
    EXPECT_EQ(fs::file_size(path), 1006u);
  }
  // A range ending inside a window takes that window; a second time nothing is fetched.
  auto lease = cache->Acquire(kT0 + 55 * kMinute, kT0 + 61 * kMinute, Later());
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(remote_->get_files, 7);  // window 5 (12:50) fetched, window 6 was there
  HistoryCacheStats s = cache->Stats();
  EXPECT_EQ(s.misses, 7u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.files, 7u);
  EXPECT_EQ(first_file_calls_, 1);
}

TEST_F(HistoryCacheTest, TheLeastRecentlyUsedFilesGoFirstAndTheBoundHolds) {
  for (int i = 0; i < 4; ++i) Export(kT0 + i * kWindow, 1000);
  auto cache = Open(Options(2500));  // room for two files
  ASSERT_TRUE(cache);
  auto use = [&](int i) {
    auto lease = cache->Acquire(kT0 + i * kWindow, kT0 + (i + 1) * kWindow, Later());
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  };
  use(0);
  use(1);
  use(0);  // 1 is now the least recently used
  use(2);
  EXPECT_TRUE(Cached(*cache, kT0));
  EXPECT_FALSE(Cached(*cache, kT0 + kWindow));
  EXPECT_TRUE(Cached(*cache, kT0 + 2 * kWindow));
  use(3);
  EXPECT_FALSE(Cached(*cache, kT0));
  HistoryCacheStats s = cache->Stats();
  EXPECT_EQ(s.files, 2u);
  EXPECT_EQ(s.bytes, 2000u);
  EXPECT_EQ(s.evictions, 2u);
}

TEST_F(HistoryCacheTest, AQueryLargerThanTheCacheIsRefusedWithTheSetting) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  auto cache = Open(Options(2500));
  ASSERT_TRUE(cache);
  auto lease = cache->Acquire(INT64_MIN, INT64_MAX, Later());
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(lease.status().message().find("--history-cache-bytes"), std::string::npos)
      << lease.status().ToString();
  EXPECT_NE(lease.status().message().find("received_at"), std::string::npos);
  EXPECT_EQ(remote_->get_files, 0);
  // Two of the three fit.
  EXPECT_TRUE(cache->Acquire(kT0, kT0 + 2 * kWindow, Later()).ok());
}

TEST_F(HistoryCacheTest, AFileThatDoesNotMatchItsEntryIsNotUsed) {
  ManifestEntry e = Export(kT0, 1000);
  // The object is replaced behind the manifest's back (same size, other bytes).
  ASSERT_TRUE(bucket_->PutBytes(e.key, std::string(1000, 'y')).ok());
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  auto lease = cache->Acquire(kT0, kT0 + kWindow, Later());
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kCorruption) << lease.status().ToString();
  EXPECT_NE(lease.status().message().find(e.sha256), std::string::npos);
  EXPECT_FALSE(Cached(*cache, kT0));
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/cache/tmp"));
  EXPECT_EQ(cache->Stats().files, 0u);
}

TEST_F(HistoryCacheTest, AWindowExportedAgainIsFetchedByItsNewEntry) {
  Export(kT0, 1000, 'a');
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  // Exported again after the cache read the manifest: the old entry's checksum no longer
  // matches, so the cache reads the entry again and takes the new file.
  Export(kT0, 1200, 'b');
  auto lease = cache->Acquire(kT0, kT0 + kWindow, Later());
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ(fs::file_size(fs::path(tmp_.path()) / "cache" / exporter::ParquetKey(kT0, "disk")),
            1200u);
}

TEST_F(HistoryCacheTest, LeasedFilesStayUntilTheirStatementEnds) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  auto cache = Open(Options(1500));  // room for one file
  ASSERT_TRUE(cache);
  auto first = cache->Acquire(kT0, kT0 + kWindow, Later());
  ASSERT_TRUE(first.ok());
  {
    // While the first statement runs, nothing may be removed: the cache goes over its bound.
    auto second = cache->Acquire(kT0 + kWindow, kT0 + 2 * kWindow, Later());
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    EXPECT_TRUE(Cached(*cache, kT0));
    EXPECT_TRUE(Cached(*cache, kT0 + kWindow));
    EXPECT_EQ(cache->Stats().bytes, 2000u);
  }
  first->reset();
  auto third = cache->Acquire(kT0 + 2 * kWindow, kT0 + 3 * kWindow, Later());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(cache->Stats().files, 1u);
  EXPECT_TRUE(Cached(*cache, kT0 + 2 * kWindow));
}

TEST_F(HistoryCacheTest, ARemovalWaitsForRunningStatementsOnOtherThreads) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  HistoryCacheOptions o = Options(2500);  // two files
  o.evict_wait = std::chrono::seconds(20);
  auto cache = Open(o);
  ASSERT_TRUE(cache);
  ASSERT_TRUE(cache->Acquire(kT0, kT0 + kWindow, Later()).ok());  // window 0, released
  std::promise<void> leased, release;
  std::thread statement([&] {
    // A statement reading window 1 runs: DuckDB may have listed window 0's file too.
    auto lease = cache->Acquire(kT0 + kWindow, kT0 + 2 * kWindow, Later());
    EXPECT_TRUE(lease.ok()) << lease.status().ToString();
    leased.set_value();
    release.get_future().wait();
  });
  leased.get_future().wait();
  auto other = std::async(std::launch::async, [&] {
    return cache->Acquire(kT0 + 2 * kWindow, kT0 + 3 * kWindow, Later()).ok();
  });
  // Window 2 is fetched; removing window 0 waits for the running statement.
  EXPECT_EQ(other.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);
  EXPECT_TRUE(Cached(*cache, kT0));
  release.set_value();
  statement.join();
  EXPECT_TRUE(other.get());
  EXPECT_FALSE(Cached(*cache, kT0));
  EXPECT_EQ(cache->Stats().files, 2u);
}

TEST_F(HistoryCacheTest, ConcurrentQueriesShareOneDownload) {
  Export(kT0, 100'000);
  remote_->get_delay = std::chrono::milliseconds(200);
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  std::vector<std::future<bool>> queries;
  for (int i = 0; i < 4; ++i) {
    queries.push_back(std::async(std::launch::async, [&] {
      auto lease = cache->Acquire(kT0, kT0 + kWindow, Later());
      return lease.ok() && fs::file_size(fs::path(tmp_.path()) / "cache" /
                                         exporter::ParquetKey(kT0, "disk")) == 100'000u;
    }));
  }
  for (auto& q : queries) EXPECT_TRUE(q.get());
  EXPECT_EQ(remote_->get_files, 1);
}

TEST_F(HistoryCacheTest, ADeadlineThatPassesStopsTheFetch) {
  Export(kT0, 1000);
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  auto lease = cache->Acquire(kT0, kT0 + kWindow, Steady::now() - std::chrono::seconds(1));
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(remote_->get_files, 0);
  // Nothing is left pinned or marked in flight: the next query fetches it.
  EXPECT_TRUE(cache->Acquire(kT0, kT0 + kWindow, Later()).ok());
  EXPECT_EQ(remote_->get_files, 1);
}

TEST_F(HistoryCacheTest, ARestartKeepsTheFilesTheirOrderAndTheManifestMirror) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  {
    auto cache = Open(Options(2500));
    ASSERT_TRUE(cache);
    EXPECT_EQ(remote_->get_bytes, 3);  // one GET per manifest entry
    ASSERT_TRUE(cache->Acquire(kT0 + kWindow, kT0 + 2 * kWindow, Later()).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct mtimes
    ASSERT_TRUE(cache->Acquire(kT0, kT0 + kWindow, Later()).ok());
  }
  // A file no manifest entry names (an export that never finished) is removed at Open.
  const fs::path stray = fs::path(tmp_.path()) / "cache/events/dt=2024-05-01/hour=12/x.parquet";
  { std::ofstream(stray) << "partial"; }
  first_file_calls_ = 0;
  auto cache = Open(Options(2500));
  ASSERT_TRUE(cache);
  EXPECT_EQ(remote_->get_bytes, 3);  // the mirror served every entry
  EXPECT_FALSE(fs::exists(stray));
  EXPECT_EQ(cache->Stats().files, 2u);
  EXPECT_EQ(first_file_calls_, 0);  // the files were there at Open: the view sees them
  // Window 1 was used before window 0: it goes first.
  ASSERT_TRUE(cache->Acquire(kT0 + 2 * kWindow, kT0 + 3 * kWindow, Later()).ok());
  EXPECT_TRUE(Cached(*cache, kT0));
  EXPECT_FALSE(Cached(*cache, kT0 + kWindow));
  EXPECT_EQ(remote_->get_files, 3);
}

TEST_F(HistoryCacheTest, AnExportedFileIsPlacedWithoutADownload) {
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  ManifestEntry e = Export(kT0, 1000);
  const std::string local = tmp_.path() + "/upload.bin";  // what Export uploaded
  ASSERT_TRUE(cache->AddExported(e, local).ok());
  EXPECT_EQ(first_file_calls_, 1);
  auto lease = cache->Acquire(kT0, kT0 + kWindow, Later());
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(remote_->get_files, 0);
  EXPECT_EQ(cache->Stats().hits, 1u);
  EXPECT_EQ(cache->Stats().entries, 1u);
  // The exporter removes its temporary file; the cached copy stays.
  fs::remove(local);
  EXPECT_TRUE(Cached(*cache, kT0));
}

TEST_F(HistoryCacheTest, BadOptionsAreRefusedWithASentence) {
  HistoryCacheOptions o = Options();
  o.max_bytes = 0;
  auto c = HistoryCache::Open(o, remote_.get());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--history-cache-bytes"), std::string::npos);
  o = Options();
  o.parallel_fetches = 0;
  EXPECT_EQ(HistoryCache::Open(o, remote_.get()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HistoryCacheTest, AnUnreadableManifestEntryFailsOpen) {
  Export(kT0, 1000);
  ASSERT_TRUE(bucket_->PutBytes(exporter::ManifestKey(kT0 + kWindow, "disk"), "{not json").ok());
  auto c = HistoryCache::Open(Options(), remote_.get());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("_manifest/events-20240501T1210Z-disk.json"),
            std::string::npos)
      << c.status().ToString();
}

TEST_F(HistoryCacheTest, OneProcessAtATimeUsesTheDirectory) {
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  auto second = HistoryCache::Open(Options(), remote_.get());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  cache.reset();
  EXPECT_TRUE(HistoryCache::Open(Options(), remote_.get()).ok());
}

// A removal given up while statements ran is done when the last one ends.
TEST_F(HistoryCacheTest, TheBoundIsRestoredWhenTheLastStatementEnds) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  auto cache = Open(Options(1500));  // one file
  ASSERT_TRUE(cache);
  auto a = cache->Acquire(kT0, kT0 + kWindow, Later());
  auto b = cache->Acquire(kT0 + kWindow, kT0 + 2 * kWindow, Later());
  auto c = cache->Acquire(kT0 + 2 * kWindow, kT0 + 3 * kWindow, Later());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(cache->Stats().files, 3u);  // all leased: nothing may go
  a->reset();
  b->reset();
  EXPECT_EQ(cache->Stats().files, 3u);  // c still runs
  c->reset();
  EXPECT_EQ(cache->Stats().files, 1u);
  EXPECT_LE(cache->Stats().bytes, 1500u);
}

// An empty cache over a bucket with history fetches the newest window at Open, so the view
// built next reads Parquet.
TEST_F(HistoryCacheTest, AnEmptyCacheFetchesTheNewestWindowAtOpen) {
  for (int i = 0; i < 3; ++i) Export(kT0 + i * kWindow, 1000);
  HistoryCacheOptions o = Options();
  o.fetch_newest_at_open = true;
  auto cache = Open(o);
  ASSERT_TRUE(cache);
  EXPECT_EQ(remote_->get_files, 1);
  EXPECT_TRUE(Cached(*cache, kT0 + 2 * kWindow));
  EXPECT_EQ(first_file_calls_, 0);  // there at Open: the view is built with it
}

// Windows exported by another process appear, and deleted ones are forgotten, at the next
// Acquire after manifest_refresh.
TEST_F(HistoryCacheTest, TheManifestIsListedAgain) {
  Export(kT0, 1000);
  HistoryCacheOptions o = Options();
  o.manifest_refresh = std::chrono::milliseconds(1);
  auto cache = Open(o);
  ASSERT_TRUE(cache);
  Export(kT0 + kWindow, 1000);
  ASSERT_TRUE(bucket_->Delete(exporter::ManifestKey(kT0, "disk")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(cache->Acquire(INT64_MIN, INT64_MAX, Later()).ok());
  EXPECT_EQ(cache->Stats().entries, 1u);
  EXPECT_TRUE(Cached(*cache, kT0 + kWindow));
  EXPECT_FALSE(Cached(*cache, kT0));
}

// A download of a window's old file that ends after the exporter placed its new file is
// dropped: the new file stays.
TEST_F(HistoryCacheTest, AStaleDownloadDoesNotReplaceANewerExport) {
  Export(kT0, 1000, 'a');
  auto cache = Open(Options());
  ASSERT_TRUE(cache);
  remote_->get_delay = std::chrono::milliseconds(300);
  auto query = std::async(std::launch::async,
                          [&] { return cache->Acquire(kT0, kT0 + kWindow, Later()).status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ManifestEntry newer = Export(kT0, 1200, 'b');
  ASSERT_TRUE(cache->AddExported(newer, tmp_.path() + "/upload.bin").ok());
  Status st = query.get();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(fs::file_size(fs::path(tmp_.path()) / "cache" / exporter::ParquetKey(kT0, "disk")),
            1200u);
  remote_->get_delay = std::chrono::milliseconds(0);
  EXPECT_TRUE(cache->Acquire(kT0, kT0 + kWindow, Later()).ok());
  EXPECT_EQ(remote_->get_files, 1);  // the new file needed no download
}

}  // namespace
}  // namespace sluice::history
