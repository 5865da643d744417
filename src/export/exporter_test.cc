#include "export/exporter.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "export/manifest.h"
#include "export/sha256.h"
#include "objstore/local_dir.h"
#include "objstore/test_util.h"

namespace sluice::exporter {
namespace {

using objstore::testing::AllPathsUnder;
using objstore::testing::FaultyObjectStore;
using objstore::testing::TempDir;

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kWindow = 10 * kMin;
constexpr int64_t kGrace = 30 * kSec;
constexpr int64_t kT0 = 1714564800 * kSec;  // 2024-05-01T12:00:00Z

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SHA-256 by OpenSSL's one-shot API, independent of the exporter's streaming digest.
std::string IndependentSha256(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string hex;
  char buf[3];
  for (unsigned char c : md) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return hex;
}

// An in-memory HotStore: windows with a row count and an exported flag. A window's "Parquet
// file" is a known text naming the window, its rows and a version that changes when rows
// arrive, so tests can tell exports apart. Failures can be injected per window.
class FakeHotStore final : public store::HotStore {
 public:
  void AddWindow(int64_t start_us, uint64_t rows) {
    std::lock_guard<std::mutex> lock(mu_);
    windows_[start_us] = {start_us, start_us + kWindow, rows, false};
  }
  // Late rows for an exported window: the store un-marks it (HotStore::CommitBatch's rule).
  void AddLateRows(int64_t start_us, uint64_t rows) {
    std::lock_guard<std::mutex> lock(mu_);
    windows_.at(start_us).rows += rows;
    windows_.at(start_us).exported = false;
  }
  void SetExported(int64_t start_us) {
    std::lock_guard<std::mutex> lock(mu_);
    windows_.at(start_us).exported = true;
  }
  static std::string ContentFor(int64_t start_us, uint64_t rows) {
    return "PAR1 window=" + std::to_string(start_us) + " rows=" + std::to_string(rows) +
           std::string(1000 + rows % 97, 'x') + " PAR1";
  }
  std::optional<store::WindowInfo> Window(int64_t start_us) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = windows_.find(start_us);
    if (it == windows_.end()) return std::nullopt;
    return it->second;
  }

  Status CommitBatch(const store::Batch&) override { return Status::Internal("not in fake"); }
  Result<uint64_t> CommittedOffset(const std::string&) override { return uint64_t{0}; }
  Result<int64_t> MaxReceivedAt() override { return int64_t{0}; }

  Result<std::vector<store::WindowInfo>> Windows() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_windows.ok()) return fail_windows;
    std::vector<store::WindowInfo> out;
    // Newest first: the exporter must not rely on the order it is given.
    for (auto it = windows_.rbegin(); it != windows_.rend(); ++it) out.push_back(it->second);
    return out;
  }
  Result<uint64_t> ExportWindowToParquet(int64_t start_us, const std::string& path,
                                         const store::ParquetOptions& options) override {
    // As PostgresStore does, outside the lock: report progress to the pace callback.
    (options.pace ? paced_exports : unpaced_exports).fetch_add(1);
    pace_gauge_seen = metrics::Default().GetGauge("sluice_export_pace_rows_per_second", "").Value();
    if (options.pace && pace_with_rows > 0) {
      pacing = true;
      options.pace(pace_with_rows);
      pacing = false;
    }
    std::lock_guard<std::mutex> lock(mu_);
    export_calls.push_back(start_us);
    last_options = options;
    auto it = windows_.find(start_us);
    if (it == windows_.end()) return Status::NotFound("no window");
    if (fail_export_of.count(start_us) != 0) return fail_export_of.at(start_us);
    if (std::filesystem::exists(path)) return Status::AlreadyExists("file exists: " + path);
    std::ofstream out(path, std::ios::binary);
    out << ContentFor(start_us, it->second.rows);
    out.close();
    if (!out) return Status::IOError("cannot write " + path);
    return it->second.rows;
  }
  Status MarkExported(int64_t start_us, uint64_t rows) override {
    std::lock_guard<std::mutex> lock(mu_);
    mark_calls.emplace_back(start_us, rows);
    if (!fail_mark.ok()) return fail_mark;
    auto it = windows_.find(start_us);
    if (it == windows_.end()) return Status::NotFound("no window");
    it->second.exported = true;
    return Status::OK();
  }
  Status DropWindow(int64_t start_us) override {
    std::lock_guard<std::mutex> lock(mu_);
    drop_calls.push_back(start_us);
    auto it = windows_.find(start_us);
    if (it == windows_.end()) return Status::NotFound("no window");
    if (!it->second.exported) return Status::FailedPrecondition("window not exported");
    windows_.erase(it);
    return Status::OK();
  }
  Status ForEachEventIdSince(int64_t, const std::function<void(std::string_view)>&) override {
    return Status::OK();
  }
  Result<uint64_t> DiskBytes() override { return uint64_t{0}; }

  // Injected failures and call records; set and read while no pass runs.
  Status fail_windows;
  std::map<int64_t, Status> fail_export_of;
  Status fail_mark;
  std::vector<int64_t> export_calls;
  std::vector<std::pair<int64_t, uint64_t>> mark_calls;
  std::vector<int64_t> drop_calls;
  store::ParquetOptions last_options;
  // Pacing: exports given a pace callback or not, the pace gauge during the last export; with
  // pace_with_rows > 0 the callback is called once with it (`pacing` while it runs).
  std::atomic<int> paced_exports{0};
  std::atomic<int> unpaced_exports{0};
  std::atomic<int64_t> pace_gauge_seen{-1};
  uint64_t pace_with_rows = 0;
  std::atomic<bool> pacing{false};

 private:
  std::mutex mu_;
  std::map<int64_t, store::WindowInfo> windows_;
};

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto local = objstore::LocalDir::Open(dir_.path() + "/objects");
    ASSERT_TRUE(local.ok()) << local.status().ToString();
    local_ = std::move(local).value();
    faulty_ = std::make_unique<FaultyObjectStore>(local_.get());
    options_.tmp_dir = dir_.path() + "/data/export-tmp";
    options_.window_us = kWindow;
    options_.grace_us = kGrace;
    options_.hot_retention_us = 2 * 3600 * kSec;
  }

  std::unique_ptr<Exporter> MakeExporter() {
    return std::make_unique<Exporter>(
        options_, &store_, faulty_.get(), [this] { return watermark_.load(); }, &clock_);
  }

  ExportReport RunOk(Exporter& e, CloseRule rule = CloseRule::kWatermarkPlusGrace) {
    auto r = e.RunOnce(rule);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->error.ok()) << r->error.ToString();
    return std::move(r).value();
  }

  std::vector<std::string> ParquetKeys() {
    std::vector<std::string> keys;
    auto listed = local_->List("events/");
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    if (!listed.ok()) return keys;
    for (const auto& info : *listed) keys.push_back(info.key);
    return keys;
  }
  std::vector<std::string> ManifestKeys() {
    std::vector<std::string> keys;
    auto listed = local_->List("_manifest/");
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    if (!listed.ok()) return keys;
    for (const auto& info : *listed) keys.push_back(info.key);
    return keys;
  }
  std::vector<std::string> TmpFiles() { return AllPathsUnder(options_.tmp_dir); }

  static uint64_t CounterValue(const char* name) {
    return metrics::Default().GetCounter(name, "").Value();
  }

  TempDir dir_;
  std::unique_ptr<objstore::LocalDir> local_;
  std::unique_ptr<FaultyObjectStore> faulty_;
  FakeHotStore store_;
  ManualClock clock_{kT0 + kWindow};
  std::atomic<int64_t> watermark_{0};
  ExporterOptions options_;
};

TEST_F(ExporterTest, NothingClosesBeforeEndPlusGrace) {
  store_.AddWindow(kT0, 5);
  auto exporter = MakeExporter();

  for (int64_t wm : {int64_t{0}, kT0 + kWindow - 1, kT0 + kWindow, kT0 + kWindow + kGrace - 1}) {
    watermark_ = wm;
    ExportReport report = RunOk(*exporter);
    EXPECT_EQ(report.watermark_us, wm);
    EXPECT_TRUE(report.exported.empty()) << "exported at watermark " << wm;
  }
  EXPECT_TRUE(store_.export_calls.empty());
  EXPECT_TRUE(ParquetKeys().empty());

  watermark_ = kT0 + kWindow + kGrace;
  ExportReport report = RunOk(*exporter);
  ASSERT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(report.exported[0].start_us, kT0);
}

TEST_F(ExporterTest, ClosedWindowWritesKeyManifestAndMarksExported) {
  store_.AddWindow(kT0, 42);
  options_.parquet.zstd_level = 3;
  auto exporter = MakeExporter();
  const uint64_t windows_before = CounterValue("sluice_export_windows_total");
  const uint64_t rows_before = CounterValue("sluice_export_rows_total");
  const uint64_t bytes_before = CounterValue("sluice_export_bytes_total");
  watermark_ = kT0 + kWindow + kGrace;
  clock_.Set(kT0 + kWindow + kGrace + 5 * kSec);

  ExportReport report = RunOk(*exporter);

  const std::string key = "events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet";
  const std::string content = FakeHotStore::ContentFor(kT0, 42);
  ASSERT_EQ(report.exported.size(), 1u);
  const WindowExport& w = report.exported[0];
  EXPECT_EQ(w.start_us, kT0);
  EXPECT_EQ(w.end_us, kT0 + kWindow);
  EXPECT_EQ(w.key, key);
  EXPECT_EQ(w.rows, 42u);
  EXPECT_EQ(w.bytes, content.size());
  EXPECT_EQ(w.sha256, IndependentSha256(content));
  EXPECT_EQ(store_.last_options.zstd_level, 3);

  // The object is the exported file, byte for byte.
  EXPECT_EQ(ParquetKeys(), std::vector<std::string>{key});
  EXPECT_EQ(ReadFile(*local_->LocalPath(key)), content);

  // The manifest entry describes it.
  EXPECT_EQ(ManifestKeys(), std::vector<std::string>{"_manifest/events-20240501T1200Z-disk.json"});
  auto text = local_->GetBytes("_manifest/events-20240501T1200Z-disk.json");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find(R"("window_start":"2024-05-01T12:00:00Z")"), std::string::npos) << *text;
  EXPECT_NE(text->find(R"("window_end":"2024-05-01T12:10:00Z")"), std::string::npos) << *text;
  EXPECT_NE(text->find(R"("exported_at":"2024-05-01T12:10:35Z")"), std::string::npos) << *text;
  auto entries = ReadManifest(*local_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 1u);
  const ManifestEntry& e = (*entries)[0];
  EXPECT_EQ(e.window_start_us, kT0);
  EXPECT_EQ(e.window_end_us, kT0 + kWindow);
  EXPECT_EQ(e.key, key);
  EXPECT_EQ(e.rows, 42u);
  EXPECT_EQ(e.bytes, content.size());
  EXPECT_EQ(e.sha256, IndependentSha256(content));
  EXPECT_EQ(e.exported_at_us, kT0 + kWindow + kGrace + 5 * kSec);

  // The store was told, with the row count; the temporary file is gone.
  EXPECT_EQ(store_.mark_calls, (std::vector<std::pair<int64_t, uint64_t>>{{kT0, 42}}));
  EXPECT_TRUE(store_.Window(kT0)->exported);
  EXPECT_TRUE(TmpFiles().empty());

  EXPECT_EQ(CounterValue("sluice_export_windows_total"), windows_before + 1);
  EXPECT_EQ(CounterValue("sluice_export_rows_total"), rows_before + 42);
  EXPECT_EQ(CounterValue("sluice_export_bytes_total"), bytes_before + content.size());
  EXPECT_EQ(metrics::Default().GetGauge("sluice_export_last_window_end_seconds", "").Value(),
            (kT0 + kWindow) / kSec);

  // A second pass has nothing to do.
  ExportReport again = RunOk(*exporter);
  EXPECT_TRUE(again.exported.empty());
  EXPECT_EQ(store_.export_calls.size(), 1u);
}

TEST_F(ExporterTest, RecentExportsAndObjectStoreSizeFollowTheUploads) {
  // An object left by an earlier run counts once listed.
  const std::string earlier = "events/dt=2024-05-01/hour=11/events-20240501T1100Z-disk.parquet";
  ASSERT_TRUE(local_->PutBytes(earlier, std::string(100, 'x')).ok());
  store_.AddWindow(kT0, 7);
  store_.AddWindow(kT0 + kWindow, 8);
  watermark_ = kT0 + 2 * kWindow + kGrace;
  auto exporter = MakeExporter();
  EXPECT_TRUE(exporter->RecentExports().empty());

  ExportReport report = RunOk(*exporter);

  ASSERT_EQ(report.exported.size(), 2u);
  std::vector<WindowExport> recent = exporter->RecentExports();
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].start_us, kT0 + kWindow);  // newest first
  EXPECT_EQ(recent[0].rows, 8u);
  EXPECT_EQ(recent[1].start_us, kT0);
  const uint64_t exported_bytes = report.exported[0].bytes + report.exported[1].bytes;
  EXPECT_EQ(metrics::Default().GetGauge("sluice_object_store_bytes", "").Value(),
            static_cast<int64_t>(100 + exported_bytes));
  EXPECT_EQ(metrics::Default().GetGauge("sluice_object_store_files", "").Value(), 3);
}

TEST_F(ExporterTest, WindowsAreExportedInStartOrder) {
  for (int i : {2, 0, 3, 1}) store_.AddWindow(kT0 + i * kWindow, 10 + i);
  store_.AddWindow(kT0 + 4 * kWindow, 99);  // not closed
  watermark_ = kT0 + 4 * kWindow + kGrace;
  auto exporter = MakeExporter();

  ExportReport report = RunOk(*exporter);

  const std::vector<int64_t> expected = {kT0, kT0 + kWindow, kT0 + 2 * kWindow, kT0 + 3 * kWindow};
  EXPECT_EQ(store_.export_calls, expected);
  ASSERT_EQ(report.exported.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(report.exported[i].start_us, expected[i]);
  ASSERT_EQ(store_.mark_calls.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(store_.mark_calls[i].first, expected[i]);
  EXPECT_EQ(ParquetKeys().size(), 4u);
  EXPECT_EQ(ManifestKeys().size(), 4u);
  EXPECT_FALSE(store_.Window(kT0 + 4 * kWindow)->exported);
}

TEST_F(ExporterTest, PutFailureLeavesNoManifestNoMarkNoTempFileAndIsRetried) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  const uint64_t errors_before = CounterValue("sluice_export_errors_total");

  faulty_->fail_put_file = true;
  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error.code(), StatusCode::kIOError);
  EXPECT_NE(r->error.message().find("injected PutFile failure"), std::string::npos)
      << r->error.ToString();
  EXPECT_NE(r->error.message().find("2024-05-01T12:00:00Z"), std::string::npos)
      << "the error names the window: " << r->error.ToString();
  EXPECT_TRUE(r->exported.empty());
  EXPECT_EQ(r->pending, 1u);
  EXPECT_TRUE(ParquetKeys().empty());
  EXPECT_TRUE(ManifestKeys().empty());
  EXPECT_TRUE(store_.mark_calls.empty());
  EXPECT_FALSE(store_.Window(kT0)->exported);
  EXPECT_TRUE(TmpFiles().empty());
  EXPECT_EQ(CounterValue("sluice_export_errors_total"), errors_before + 1);

  faulty_->fail_put_file = false;
  ExportReport report = RunOk(*exporter);
  ASSERT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(ParquetKeys().size(), 1u);
  EXPECT_EQ(ManifestKeys().size(), 1u);
  EXPECT_TRUE(store_.Window(kT0)->exported);
  EXPECT_TRUE(TmpFiles().empty());
}

TEST_F(ExporterTest, SizeMismatchAfterUploadWritesNoManifest) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  faulty_->head_size_delta = -1;  // the store reports a truncated object

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error.code(), StatusCode::kCorruption) << r->error.ToString();
  EXPECT_TRUE(ManifestKeys().empty());
  EXPECT_TRUE(store_.mark_calls.empty());
  EXPECT_TRUE(TmpFiles().empty());
}

TEST_F(ExporterTest, OnExportedRunsAfterTheMarkOnlyForExportedWindows) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  std::vector<std::pair<int64_t, bool>> seen;  // start, marked exported when called
  options_.on_exported = [&](const WindowExport& w) {
    seen.emplace_back(w.start_us, store_.Window(w.start_us)->exported);
  };
  auto exporter = MakeExporter();
  faulty_->fail_put_bytes = true;
  ASSERT_TRUE(exporter->RunOnce().ok());
  EXPECT_TRUE(seen.empty());  // failed: not called
  faulty_->fail_put_bytes = false;
  RunOk(*exporter);
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, bool>>{{kT0, true}}));
}

TEST_F(ExporterTest, OnUploadedSeesTheFileBeforeTheMarkAndItsFailureIsRetried) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  std::vector<std::string> digests;  // SHA-256 of the file handed over, as the entry says
  bool fail = true;
  options_.on_uploaded = [&](const ManifestEntry& e, const std::string& local) -> Status {
    EXPECT_FALSE(store_.Window(kT0)->exported);
    auto d = DigestFile(local);
    EXPECT_TRUE(d.ok());
    if (d.ok() && d->sha256 == e.sha256 && d->bytes == e.bytes) digests.push_back(d->sha256);
    if (fail) return Status::IOError("disk full");
    return Status::OK();
  };
  auto exporter = MakeExporter();
  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->error.message().find("disk full"), std::string::npos) << r->error.ToString();
  EXPECT_TRUE(store_.mark_calls.empty());
  EXPECT_TRUE(TmpFiles().empty());
  fail = false;
  RunOk(*exporter);
  EXPECT_TRUE(store_.Window(kT0)->exported);
  ASSERT_EQ(digests.size(), 2u);
  EXPECT_EQ(digests[0], digests[1]);
}

TEST_F(ExporterTest, ManifestFailureMeansNoMarkExported) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  faulty_->fail_put_bytes = true;

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error.code(), StatusCode::kIOError) << r->error.ToString();
  EXPECT_TRUE(ManifestKeys().empty());
  EXPECT_TRUE(store_.mark_calls.empty());
  EXPECT_FALSE(store_.Window(kT0)->exported);
  EXPECT_TRUE(TmpFiles().empty());

  faulty_->fail_put_bytes = false;
  RunOk(*exporter);
  EXPECT_EQ(ParquetKeys().size(), 1u) << "the retry overwrote the same key";
  EXPECT_EQ(ManifestKeys().size(), 1u);
  EXPECT_TRUE(store_.Window(kT0)->exported);
}

TEST_F(ExporterTest, MarkExportedFailureIsRetried) {
  store_.AddWindow(kT0, 7);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  store_.fail_mark = Status::Unavailable("store is down");

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(store_.Window(kT0)->exported);
  EXPECT_TRUE(TmpFiles().empty());

  store_.fail_mark = Status::OK();
  ExportReport report = RunOk(*exporter);
  EXPECT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(store_.export_calls.size(), 2u);
  EXPECT_TRUE(store_.Window(kT0)->exported);
  EXPECT_EQ(ParquetKeys().size(), 1u);
  EXPECT_EQ(ManifestKeys().size(), 1u);
}

TEST_F(ExporterTest, FailureAtWindowTwoStopsThePass) {
  for (int i = 0; i < 3; ++i) store_.AddWindow(kT0 + i * kWindow, 10 + i);
  watermark_ = kT0 + 3 * kWindow + kGrace;
  auto exporter = MakeExporter();
  store_.fail_export_of[kT0 + kWindow] = Status::IOError("disk full");

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error.code(), StatusCode::kIOError);
  EXPECT_NE(r->error.message().find("disk full"), std::string::npos);
  ASSERT_EQ(r->exported.size(), 1u);
  EXPECT_EQ(r->exported[0].start_us, kT0);
  EXPECT_EQ(r->pending, 2u);
  EXPECT_EQ(store_.export_calls, (std::vector<int64_t>{kT0, kT0 + kWindow}))
      << "window 3 must not be tried after window 2 failed";
  EXPECT_EQ(ParquetKeys().size(), 1u);
  EXPECT_EQ(ManifestKeys().size(), 1u);
  EXPECT_FALSE(store_.Window(kT0 + 2 * kWindow)->exported);
  EXPECT_TRUE(TmpFiles().empty());

  store_.fail_export_of.clear();
  store_.export_calls.clear();
  ExportReport report = RunOk(*exporter);
  EXPECT_EQ(store_.export_calls, (std::vector<int64_t>{kT0 + kWindow, kT0 + 2 * kWindow}));
  EXPECT_EQ(report.exported.size(), 2u);
  EXPECT_EQ(ParquetKeys().size(), 3u);
  EXPECT_EQ(ManifestKeys().size(), 3u);
}

TEST_F(ExporterTest, RerunOfAnExportedWindowOverwritesTheSameKey) {
  store_.AddWindow(kT0, 5);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  RunOk(*exporter);
  const std::string key = ParquetKey(kT0, "disk");
  EXPECT_EQ(ReadFile(*local_->LocalPath(key)), FakeHotStore::ContentFor(kT0, 5));

  store_.AddLateRows(kT0, 3);  // the store un-marks the window
  ExportReport report = RunOk(*exporter);
  ASSERT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(report.exported[0].rows, 8u);

  const std::string content = FakeHotStore::ContentFor(kT0, 8);
  EXPECT_EQ(ParquetKeys(), std::vector<std::string>{key}) << "a rerun must not add a file";
  EXPECT_EQ(ReadFile(*local_->LocalPath(key)), content);
  auto entries = ReadManifest(*local_);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].rows, 8u);
  EXPECT_EQ((*entries)[0].bytes, content.size());
  EXPECT_EQ((*entries)[0].sha256, IndependentSha256(content));
  EXPECT_EQ(store_.mark_calls.back(), (std::pair<int64_t, uint64_t>{kT0, 8}));
  EXPECT_EQ(
      AllPathsUnder(local_->root()),
      (std::vector<std::string>{"_manifest", "_manifest/events-20240501T1200Z-disk.json", "events",
                                "events/dt=2024-05-01", "events/dt=2024-05-01/hour=12", key}))
      << "no stray files in the object store";
}

TEST_F(ExporterTest, RetentionDropsOnlyExportedWindowsPastRetention) {
  options_.hot_retention_us = 3600 * kSec;
  const int64_t old_exported = kT0;
  const int64_t recent_exported = kT0 + 6 * kWindow;
  const int64_t old_unexported_after_failure = kT0 + kWindow;
  store_.AddWindow(old_exported, 1);
  store_.AddWindow(old_unexported_after_failure, 2);
  store_.AddWindow(recent_exported, 3);
  watermark_ = kT0 + 7 * kWindow + kGrace;
  store_.fail_export_of[old_unexported_after_failure] = Status::IOError("boom");
  auto exporter = MakeExporter();
  // now - retention lies exactly at the end of old_exported: it is due, the others are not.
  clock_.Set(old_exported + kWindow + 3600 * kSec);

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error.code(), StatusCode::kIOError);
  EXPECT_EQ(r->dropped, std::vector<int64_t>{old_exported});
  EXPECT_FALSE(store_.Window(old_exported).has_value());
  EXPECT_TRUE(store_.Window(old_unexported_after_failure).has_value());
  EXPECT_TRUE(store_.Window(recent_exported).has_value());
  EXPECT_EQ(store_.drop_calls, std::vector<int64_t>{old_exported})
      << "unexported windows are never dropped, whatever their age";
  EXPECT_EQ(metrics::Default().GetGauge("sluice_hot_windows", "").Value(), 2);

  // Later, with the failure gone: both are exported; retention takes the one now old enough.
  store_.fail_export_of.clear();
  clock_.Set(old_unexported_after_failure + kWindow + 3600 * kSec);
  ExportReport report = RunOk(*exporter);
  EXPECT_EQ(report.exported.size(), 2u);
  EXPECT_EQ(report.dropped, std::vector<int64_t>{old_unexported_after_failure});
  EXPECT_TRUE(store_.Window(recent_exported).has_value());
  // The Parquet files stay in the object store.
  EXPECT_EQ(ParquetKeys().size(), 3u);
}

TEST_F(ExporterTest, RetentionKeepsMarkedWindowsMissingFromTheObjectStore) {
  store_.AddWindow(kT0, 1);
  store_.SetExported(kT0);  // marked, but neither file nor manifest entry exists
  clock_.Set(kT0 + kWindow + options_.hot_retention_us + kSec);
  watermark_ = clock_.NowMicros();
  auto exporter = MakeExporter();

  auto r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error.code(), StatusCode::kFailedPrecondition) << r->error.ToString();
  EXPECT_NE(r->error.message().find(ParquetKey(kT0, "disk")), std::string::npos);
  EXPECT_TRUE(r->dropped.empty());
  EXPECT_TRUE(store_.drop_calls.empty());
  EXPECT_TRUE(store_.Window(kT0).has_value());

  // With the file but not the manifest entry, still kept.
  ASSERT_TRUE(local_->PutBytes(ParquetKey(kT0, "disk"), "x").ok());
  r = exporter->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->error.message().find(ManifestKey(kT0, "disk")), std::string::npos)
      << r->error.ToString();
  EXPECT_TRUE(store_.Window(kT0).has_value());
}

TEST_F(ExporterTest, CloseAllModeIgnoresGraceButNotTheWatermark) {
  store_.AddWindow(kT0, 1);
  store_.AddWindow(kT0 + kWindow, 2);
  watermark_ = kT0 + kWindow + 1;  // inside the first window's grace, inside the second window
  auto exporter = MakeExporter();

  EXPECT_TRUE(RunOk(*exporter).exported.empty());
  ExportReport report = RunOk(*exporter, CloseRule::kWatermarkOnly);
  ASSERT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(report.exported[0].start_us, kT0);
  EXPECT_FALSE(store_.Window(kT0 + kWindow)->exported);

  watermark_ = kT0 + 2 * kWindow;  // exactly the second window's end
  report = RunOk(*exporter, CloseRule::kWatermarkOnly);
  ASSERT_EQ(report.exported.size(), 1u);
  EXPECT_EQ(report.exported[0].start_us, kT0 + kWindow);
}

TEST_F(ExporterTest, ListingFailureFailsThePass) {
  store_.AddWindow(kT0, 1);
  watermark_ = kT0 + kWindow + kGrace;
  store_.fail_windows = Status::Unavailable("store down");
  auto exporter = MakeExporter();
  auto r = exporter->RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("store down"), std::string::npos);
}

TEST_F(ExporterTest, StaleTempFilesFromACrashAreRemoved) {
  std::filesystem::create_directories(options_.tmp_dir);
  std::ofstream(options_.tmp_dir + "/export-20240501T1150Z-disk.parquet") << "half a file";
  std::ofstream(options_.tmp_dir + "/unrelated.txt") << "not ours";
  auto exporter = MakeExporter();
  RunOk(*exporter);
  EXPECT_EQ(TmpFiles(), std::vector<std::string>{"unrelated.txt"});
}

TEST_F(ExporterTest, InvalidOptionsAreRefused) {
  auto check = [&](ExporterOptions o, std::string_view what) {
    SCOPED_TRACE(std::string(what));
    EXPECT_EQ(ValidateExporterOptions(o).code(), StatusCode::kInvalidArgument);
    Exporter e(
        o, &store_, faulty_.get(), [] { return int64_t{0}; }, &clock_);
    EXPECT_EQ(e.RunOnce().status().code(), StatusCode::kInvalidArgument);
  };
  EXPECT_TRUE(ValidateExporterOptions(options_).ok());
  ExporterOptions o = options_;
  o.window_us = 1500 * 1000;  // 1.5 s
  check(o, "window not whole seconds");
  o = options_;
  o.window_us = 0;
  check(o, "zero window");
  o = options_;
  o.grace_us = -1;
  check(o, "negative grace");
  o = options_;
  o.shard = "a/b";
  check(o, "bad shard");
  o = options_;
  o.tmp_dir = "";
  check(o, "no tmp dir");
}

TEST(FormatReportTest, SaysWhatHappened) {
  ExportReport empty;
  empty.watermark_us = kT0;
  EXPECT_EQ(FormatReport(empty), "no window to export (watermark 2024-05-01T12:00:00Z)\n");

  ExportReport r;
  r.watermark_us = kT0 + 2 * kWindow;
  r.exported.push_back({kT0, kT0 + kWindow, ParquetKey(kT0, "disk"), 12, 3456, "", 0.5});
  r.dropped = {kT0 - 30 * kWindow};
  r.pending = 2;
  r.error = Status::IOError("disk full");
  const std::string text = FormatReport(r);
  EXPECT_NE(text.find("exported 1 window (12 rows, 3456 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("2024-05-01T12:00:00Z"), std::string::npos) << text;
  EXPECT_NE(text.find(ParquetKey(kT0, "disk")), std::string::npos) << text;
  EXPECT_NE(text.find("dropped 1 hot window past the retention: 2024-05-01T07:00:00Z"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2 closed windows not exported yet"), std::string::npos) << text;
  EXPECT_NE(text.find("error: IO error: disk full"), std::string::npos) << text;
}

TEST_F(ExporterTest, BackgroundLoopExportsAndStopsPromptly) {
  options_.poll_us = 3600 * kSec;  // Stop must not wait for the next poll
  store_.AddWindow(kT0, 4);
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  exporter->Start();
  // The first pass runs at once.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!store_.Window(kT0)->exported && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(store_.Window(kT0)->exported);
  const auto stop_started = std::chrono::steady_clock::now();
  exporter->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, std::chrono::seconds(5));
  exporter->Stop();  // idempotent
  EXPECT_EQ(ParquetKeys().size(), 1u);
}

TEST_F(ExporterTest, BackgroundLoopKeepsRetryingAfterFailures) {
  options_.poll_us = 1000;  // 1 ms
  store_.AddWindow(kT0, 4);
  watermark_ = kT0 + kWindow + kGrace;
  faulty_->fail_put_file = true;
  auto exporter = MakeExporter();
  exporter->Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (faulty_->put_file_calls.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(faulty_->put_file_calls.load(), 3);
  EXPECT_FALSE(store_.Window(kT0)->exported);
  faulty_->fail_put_file = false;
  while (!store_.Window(kT0)->exported && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  exporter->Stop();
  EXPECT_TRUE(store_.Window(kT0)->exported);
  EXPECT_EQ(ManifestKeys().size(), 1u);
}

TEST(PaceTest, SpreadsAWindowOverItsShareOfTheInterval) {
  // 12,000 events/s for 10 minutes, spread over half of the next 10: 24,000 rows/s.
  EXPECT_DOUBLE_EQ(PaceRowsPerSecond(7'200'000, 0.5, kWindow), 24'000);
  EXPECT_DOUBLE_EQ(PaceRowsPerSecond(7'200'000, 1, kWindow), 12'000);
  // A small window is not stretched below the floor.
  EXPECT_DOUBLE_EQ(PaceRowsPerSecond(1'000, 0.5, kWindow), kMinPaceRowsPerSecond);
  EXPECT_DOUBLE_EQ(PaceRowsPerSecond(0, 0.5, kWindow), kMinPaceRowsPerSecond);
  // Off.
  EXPECT_EQ(PaceRowsPerSecond(7'200'000, 0, kWindow), 0);
  EXPECT_EQ(PaceRowsPerSecond(7'200'000, 0.5, 0), 0);

  // 24,000 rows at 24,000 rows/s are due at 1 s.
  EXPECT_EQ(PaceDelayUs(24'000, 24'000, 0), kSec);
  EXPECT_EQ(PaceDelayUs(24'000, 24'000, kSec / 4), 3 * kSec / 4);
  EXPECT_EQ(PaceDelayUs(24'000, 24'000, kSec), 0);
  EXPECT_EQ(PaceDelayUs(24'000, 24'000, 5 * kSec), 0);  // behind: never a negative wait
  EXPECT_EQ(PaceDelayUs(24'000, 0, 0), 0);              // unpaced
}

TEST_F(ExporterTest, SpreadOutsideZeroToOneIsRefused) {
  store_.AddWindow(kT0, 4);
  watermark_ = kT0 + kWindow + kGrace;
  for (double bad : {-0.1, 1.5}) {
    options_.spread = bad;
    auto r = MakeExporter()->RunOnce();
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("spread"), std::string::npos) << r.status().ToString();
  }
  EXPECT_TRUE(store_.export_calls.empty());
}

TEST_F(ExporterTest, BackgroundLoopPacesTheOneDueWindowAndStopEndsTheWait) {
  options_.spread = 0.5;
  options_.poll_us = 3600 * kSec;
  store_.AddWindow(kT0, 7'200'000);
  // The clock stands still: 1,200,000 rows at 24,000 rows/s are 50 s ahead of the pace.
  store_.pace_with_rows = 1'200'000;
  watermark_ = kT0 + kWindow + kGrace;
  auto exporter = MakeExporter();
  exporter->Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!store_.pacing && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(store_.pacing) << "the export was not paced";
  EXPECT_EQ(store_.paced_exports, 1);
  EXPECT_EQ(store_.pace_gauge_seen, 24'000);
  // Still waiting after a while: the pace holds the export back.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(store_.pacing);
  const auto stop_started = std::chrono::steady_clock::now();
  exporter->Stop();  // ends the wait; the window still finishes
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, std::chrono::seconds(5));
  EXPECT_TRUE(store_.Window(kT0)->exported);
  EXPECT_EQ(metrics::Default().GetGauge("sluice_export_pace_rows_per_second", "").Value(), 0);
}

TEST_F(ExporterTest, BacklogsAndRunOnceAreNotPaced) {
  options_.spread = 0.5;
  options_.poll_us = 3600 * kSec;
  store_.pace_with_rows = 1'200'000;  // would wait ~50 s if paced
  store_.AddWindow(kT0, 7'200'000);
  store_.AddWindow(kT0 + kWindow, 7'200'000);
  watermark_ = kT0 + 2 * kWindow + kGrace;
  {
    auto exporter = MakeExporter();
    exporter->Start();  // two windows due: a backlog
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!store_.Window(kT0 + kWindow)->exported &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    exporter->Stop();
  }
  EXPECT_TRUE(store_.Window(kT0 + kWindow)->exported);
  EXPECT_EQ(store_.unpaced_exports, 2);
  EXPECT_EQ(store_.paced_exports, 0);

  store_.AddWindow(kT0 + 2 * kWindow, 7'200'000);
  watermark_ = kT0 + 3 * kWindow + kGrace;
  RunOk(*MakeExporter());  // one window due, but RunOnce
  EXPECT_TRUE(store_.Window(kT0 + 2 * kWindow)->exported);
  EXPECT_EQ(store_.unpaced_exports, 3);
  EXPECT_EQ(store_.paced_exports, 0);
}

}  // namespace
}  // namespace sluice::exporter
