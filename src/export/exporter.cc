#include "export/exporter.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <limits>
#include <utility>

#include "common/thread_priority.h"
#include "export/manifest.h"
#include "export/sha256.h"

namespace sluice::exporter {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kDefaultMaxPollUs = 10 * kMicrosPerSecond;
constexpr std::string_view kTempPrefix = "export-";
constexpr std::string_view kTempSuffix = ".parquet";

// t + d <= limit, without overflow (d >= 0).
bool PlusIsAtMost(int64_t t, int64_t d, int64_t limit) {
  return t <= std::numeric_limits<int64_t>::max() - d && t + d <= limit;
}

std::vector<double> ExportSecondsBounds() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

// Removes a local file when it goes out of scope (whatever happened to the export).
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      spdlog::warn("exporter: {}",
                   Status::FromErrno("remove temporary file " + path_, err).message());
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Status ValidateExporterOptions(const ExporterOptions& o) {
  if (o.window_us < 1'000'000 || o.window_us % 1'000'000 != 0) {
    return Status::InvalidArgument("export interval must be a positive whole number of seconds");
  }
  if (o.grace_us < 0) return Status::InvalidArgument("export grace must not be negative");
  if (o.hot_retention_us < 0) {
    return Status::InvalidArgument("hot retention must not be negative");
  }
  if (o.poll_us < 0) return Status::InvalidArgument("export poll interval must not be negative");
  if (o.tmp_dir.empty()) return Status::InvalidArgument("export tmp_dir is empty");
  if (!(o.spread >= 0 && o.spread <= 1)) {
    return Status::InvalidArgument("export spread must be between 0 (off) and 1");
  }
  if (o.parquet.row_group_rows == 0) {
    return Status::InvalidArgument("Parquet row group size must be positive");
  }
  return ValidateShard(o.shard);
}

double PaceRowsPerSecond(uint64_t rows, double spread, int64_t window_us) {
  if (!(spread > 0) || window_us <= 0) return 0;
  const double seconds = spread * static_cast<double>(window_us) / kMicrosPerSecond;
  return std::max(static_cast<double>(rows) / seconds, kMinPaceRowsPerSecond);
}

int64_t PaceDelayUs(uint64_t rows_done, double rows_per_second, int64_t elapsed_us) {
  if (!(rows_per_second > 0)) return 0;
  const double due_us = static_cast<double>(rows_done) / rows_per_second * kMicrosPerSecond;
  const double wait = due_us - static_cast<double>(elapsed_us);
  return wait > 0 ? static_cast<int64_t>(wait) : 0;
}

std::string FormatReport(const ExportReport& report) {
  std::string out;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  for (const WindowExport& w : report.exported) {
    rows += w.rows;
    bytes += w.bytes;
  }
  if (report.exported.empty()) {
    out += fmt::format("no window to export (watermark {})\n", FormatIsoUtc(report.watermark_us));
  } else {
    out += fmt::format("exported {} window{} ({} rows, {} bytes; watermark {}):\n",
                       report.exported.size(), report.exported.size() == 1 ? "" : "s", rows, bytes,
                       FormatIsoUtc(report.watermark_us));
    for (const WindowExport& w : report.exported) {
      out += fmt::format("  {}  {:>10} rows  {:>12} bytes  {:>7.2f} s  {}\n",
                         FormatIsoUtc(w.start_us), w.rows, w.bytes, w.seconds, w.key);
    }
  }
  if (!report.dropped.empty()) {
    out += fmt::format("dropped {} hot window{} past the retention:", report.dropped.size(),
                       report.dropped.size() == 1 ? "" : "s");
    for (int64_t start : report.dropped) out += " " + FormatIsoUtc(start);
    out += '\n';
  }
  if (report.pending > 0) {
    out += fmt::format("{} closed window{} not exported yet\n", report.pending,
                       report.pending == 1 ? "" : "s");
  }
  if (!report.error.ok()) out += "error: " + report.error.ToString() + "\n";
  return out;
}

Exporter::Exporter(ExporterOptions options, store::HotStore* store, objstore::ObjectStore* objects,
                   std::function<int64_t()> watermark, Clock* clock)
    : options_(std::move(options)),
      store_(store),
      objects_(objects),
      watermark_(std::move(watermark)),
      clock_(clock),
      windows_total_(metrics::Default().GetCounter("sluice_export_windows_total",
                                                   "Windows exported to the object store")),
      rows_total_(metrics::Default().GetCounter("sluice_export_rows_total",
                                                "Rows exported to the object store")),
      bytes_total_(metrics::Default().GetCounter("sluice_export_bytes_total",
                                                 "Parquet bytes written to the object store")),
      errors_total_(metrics::Default().GetCounter("sluice_export_errors_total",
                                                  "Failed window exports and retention drops")),
      seconds_(metrics::Default().GetHistogram("sluice_export_seconds", "Time to export one window",
                                               {}, ExportSecondsBounds())),
      pace_(metrics::Default().GetGauge(
          "sluice_export_pace_rows_per_second",
          "Rows per second the running export is held to (--export-spread); 0 when none")),
      last_window_end_(
          metrics::Default().GetGauge("sluice_export_last_window_end_seconds",
                                      "End (Unix seconds) of the last window exported")),
      hot_windows_(
          metrics::Default().GetGauge("sluice_hot_windows", "Windows with rows in the hot store")),
      object_bytes_(metrics::Default().GetGauge(
          "sluice_object_store_bytes",
          "Bytes of the Parquet files under events/ in the object store")),
      object_files_(metrics::Default().GetGauge(
          "sluice_object_store_files", "Parquet files under events/ in the object store")) {
  SLUICE_CHECK(store_ != nullptr);
  SLUICE_CHECK(objects_ != nullptr);
  SLUICE_CHECK(watermark_ != nullptr);
  SLUICE_CHECK(clock_ != nullptr);
}

Exporter::~Exporter() { Stop(); }

Result<ExportReport> Exporter::RunOnce(CloseRule rule) { return RunPass(rule, std::stop_token()); }

Result<ExportReport> Exporter::RunPass(CloseRule rule, const std::stop_token& stop) {
  std::lock_guard<std::mutex> lock(pass_mu_);
  auto fail = [this](Status s) {
    errors_total_.Inc();
    return s;
  };
  if (Status s = ValidateExporterOptions(options_); !s.ok()) return fail(s);
  std::error_code ec;
  std::filesystem::create_directories(options_.tmp_dir, ec);
  if (ec) {
    return fail(Status::IOError("export tmp dir " + options_.tmp_dir + ": " + ec.message()));
  }
  if (!cleaned_tmp_dir_) {
    RemoveStaleTempFiles();
    cleaned_tmp_dir_ = true;
  }
  if (!objects_listed_) CountObjects();

  ExportReport report;
  report.watermark_us = watermark_();
  const int64_t grace = rule == CloseRule::kWatermarkOnly ? 0 : options_.grace_us;

  Result<std::vector<store::WindowInfo>> listed = store_->Windows();
  if (!listed.ok()) return fail(listed.status().WithContext("list hot-store windows"));
  std::vector<store::WindowInfo> windows = std::move(listed).value();
  std::sort(windows.begin(), windows.end(),
            [](const store::WindowInfo& a, const store::WindowInfo& b) {
              return a.start_us < b.start_us;
            });

  // Closed, unexported windows in start order. Windows do not overlap, so the first window
  // that is not closed ends the list: nothing after it is closed either.
  std::vector<store::WindowInfo*> due;
  for (store::WindowInfo& w : windows) {
    if (!PlusIsAtMost(w.end_us, grace, report.watermark_us)) break;
    if (!w.exported) due.push_back(&w);
  }
  for (size_t i = 0; i < due.size(); ++i) {
    if (stop.stop_requested()) {
      report.pending = due.size() - i;
      break;
    }
    // Paced only while keeping up: one window due, in the background loop (whose token can
    // stop; RunOnce's cannot).
    const double pace = stop.stop_possible() && rule == CloseRule::kWatermarkPlusGrace &&
                                due.size() == 1
                            ? PaceRowsPerSecond(due[i]->rows, options_.spread, options_.window_us)
                            : 0;
    WindowExport done;
    Status s = ExportWindow(*due[i], pace, stop, &done);
    if (!s.ok()) {
      report.error = fail(s);
      report.pending = due.size() - i;
      break;
    }
    due[i]->exported = true;
    report.exported.push_back(std::move(done));
  }

  Status retention = ApplyRetention(windows, &report);
  if (report.error.ok()) report.error = retention;
  return report;
}

void Exporter::CountObjects() {
  Result<std::vector<objstore::ObjectInfo>> listed = objects_->List(std::string(kEventsPrefix));
  if (!listed.ok()) {
    // Only the size gauges wait for it; the next pass lists again.
    spdlog::debug("exporter: listing {} for its size: {}", objects_->Url(),
                  listed.status().ToString());
    return;
  }
  for (const objstore::ObjectInfo& info : *listed) {
    if (info.key.ends_with(".parquet")) object_sizes_[info.key] = info.size;
  }
  objects_listed_ = true;
  PublishObjectSizes();
}

void Exporter::PublishObjectSizes() {
  uint64_t total = 0;
  for (const auto& [key, size] : object_sizes_) total += size;
  object_bytes_.Set(static_cast<int64_t>(total));
  object_files_.Set(static_cast<int64_t>(object_sizes_.size()));
}

std::vector<WindowExport> Exporter::RecentExports() const {
  std::lock_guard lock(recent_mu_);
  return {recent_.begin(), recent_.end()};
}

Status Exporter::ExportWindow(const store::WindowInfo& window, double pace_rows_per_second,
                              const std::stop_token& stop, WindowExport* out) {
  const std::string what = "export window " + FormatIsoUtc(window.start_us);
  if (window.start_us % 1'000'000 != 0 || window.end_us <= window.start_us) {
    return Status::FailedPrecondition(
        what + ": the hot store's window [" + std::to_string(window.start_us) + ", " +
        std::to_string(window.end_us) + ") does not start on a whole second");
  }
  const int64_t started = clock_->MonotonicMicros();
  const std::string key = ParquetKey(window.start_us, options_.shard);
  const std::string manifest_key = ManifestKey(window.start_us, options_.shard);
  TempFile tmp(options_.tmp_dir + "/" + std::string(kTempPrefix) + WindowStamp(window.start_us) +
               "-" + options_.shard + std::string(kTempSuffix));
  if (::unlink(tmp.path().c_str()) != 0 && errno != ENOENT) {
    const int err = errno;
    return Status::FromErrno(what + ": remove old " + tmp.path(), err);
  }

  store::ParquetOptions parquet = options_.parquet;
  if (pace_rows_per_second > 0) {
    parquet.pace = [this, pace_rows_per_second, started, &stop](uint64_t rows_so_far) {
      const int64_t wait =
          PaceDelayUs(rows_so_far, pace_rows_per_second, clock_->MonotonicMicros() - started);
      if (wait <= 0 || stop.stop_requested()) return;
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_cv_.wait_for(lock, stop, std::chrono::microseconds(wait), [] { return false; });
    };
  }
  pace_.Set(static_cast<int64_t>(pace_rows_per_second));
  Result<uint64_t> rows = store_->ExportWindowToParquet(window.start_us, tmp.path(), parquet);
  pace_.Set(0);
  if (!rows.ok()) return rows.status().WithContext(what + ": write " + tmp.path());
  Result<FileDigest> digest = DigestFile(tmp.path());
  if (!digest.ok()) return digest.status().WithContext(what + ": checksum");

  if (Status s = objects_->PutFile(key, tmp.path()); !s.ok()) {
    return s.WithContext(what + ": put " + objects_->Url() + "/" + key);
  }
  Result<objstore::ObjectInfo> head = objects_->Head(key);
  if (!head.ok()) return head.status().WithContext(what + ": check " + key);
  if (head->size != digest->bytes) {
    return Status::Corruption(what + ": " + objects_->Url() + "/" + key + " holds " +
                              std::to_string(head->size) + " bytes after the upload, not " +
                              std::to_string(digest->bytes));
  }

  ManifestEntry entry;
  entry.window_start_us = window.start_us;
  entry.window_end_us = window.end_us;
  entry.key = key;
  entry.rows = *rows;
  entry.bytes = digest->bytes;
  entry.sha256 = digest->sha256;
  entry.exported_at_us = clock_->NowMicros();
  if (Status s = objects_->PutBytes(manifest_key, ToJson(entry)); !s.ok()) {
    return s.WithContext(what + ": put manifest entry " + manifest_key);
  }
  if (options_.on_uploaded) {
    if (Status s = options_.on_uploaded(entry, tmp.path()); !s.ok()) {
      return s.WithContext(what + ": after the upload");
    }
  }
  if (Status s = store_->MarkExported(window.start_us, *rows); !s.ok()) {
    return s.WithContext(what + ": mark exported in the hot store");
  }

  out->start_us = window.start_us;
  out->end_us = window.end_us;
  out->key = key;
  out->rows = *rows;
  out->bytes = digest->bytes;
  out->sha256 = digest->sha256;
  out->seconds = static_cast<double>(clock_->MonotonicMicros() - started) /
                 static_cast<double>(kMicrosPerSecond);

  windows_total_.Inc();
  rows_total_.Inc(out->rows);
  bytes_total_.Inc(out->bytes);
  seconds_.Observe(out->seconds);
  last_window_end_.Set(window.end_us / kMicrosPerSecond);
  if (objects_listed_) {
    object_sizes_[key] = out->bytes;  // a rerun overwrites the same key
    PublishObjectSizes();
  }
  {
    std::lock_guard lock(recent_mu_);
    recent_.push_front(*out);
    if (recent_.size() > kRecentExports) recent_.pop_back();
  }
  spdlog::info("exporter: window {} exported: {} rows, {} bytes in {:.2f} s to {}/{}",
               FormatIsoUtc(window.start_us), out->rows, out->bytes, out->seconds, objects_->Url(),
               key);
  if (options_.on_exported) options_.on_exported(*out);
  return Status::OK();
}

Status Exporter::ApplyRetention(const std::vector<store::WindowInfo>& windows,
                                ExportReport* report) {
  const int64_t now = clock_->NowMicros();
  Status first;
  auto fail = [&](Status s) {
    errors_total_.Inc();
    if (first.ok()) first = std::move(s);
  };
  for (const store::WindowInfo& w : windows) {
    if (!w.exported || !PlusIsAtMost(w.end_us, options_.hot_retention_us, now)) continue;
    const std::string what = "drop hot window " + FormatIsoUtc(w.start_us);
    bool in_object_store = true;
    for (const std::string& key :
         {ParquetKey(w.start_us, options_.shard), ManifestKey(w.start_us, options_.shard)}) {
      Result<objstore::ObjectInfo> head = objects_->Head(key);
      if (head.ok()) continue;
      in_object_store = false;
      if (head.status().code() == StatusCode::kNotFound) {
        fail(Status::FailedPrecondition(what + ": the window is marked exported but " +
                                        objects_->Url() + "/" + key +
                                        " is missing; keeping its hot rows"));
      } else {
        fail(head.status().WithContext(what + ": check " + key));
      }
      break;
    }
    if (!in_object_store) continue;
    if (Status s = store_->DropWindow(w.start_us); !s.ok()) {
      fail(s.WithContext(what));
      continue;
    }
    report->dropped.push_back(w.start_us);
  }
  hot_windows_.Set(static_cast<int64_t>(windows.size() - report->dropped.size()));
  return first;
}

void Exporter::RemoveStaleTempFiles() {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(options_.tmp_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kTempPrefix) || !name.ends_with(kTempSuffix)) continue;
    std::error_code rm_ec;
    std::filesystem::remove(it->path(), rm_ec);
    if (rm_ec) {
      spdlog::warn("exporter: cannot remove stale temporary file {}: {}", it->path().string(),
                   rm_ec.message());
    }
  }
}

void Exporter::Start() {
  SLUICE_CHECK_MSG(!thread_.joinable(), "Exporter::Start called twice");
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void Exporter::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void Exporter::Loop(const std::stop_token& stop) {
  if (Status st = EnterBackground(); !st.ok()) {
    spdlog::warn("exporter: runs at the ingest path's priority: {}", st.ToString());
  }
  int64_t poll_us =
      options_.poll_us > 0 ? options_.poll_us : std::min(options_.window_us, kDefaultMaxPollUs);
  if (poll_us <= 0) poll_us = kDefaultMaxPollUs;  // invalid options: passes fail, slowly
  std::string failing;  // the failure last logged; empty while passes succeed
  while (!stop.stop_requested()) {
    Result<ExportReport> pass = RunPass(CloseRule::kWatermarkPlusGrace, stop);
    Status s = pass.ok() ? pass->error : pass.status();
    if (!s.ok()) {
      std::string message = s.ToString();
      if (message != failing) {
        spdlog::error("exporter: {} (retrying every {} s)", message,
                      static_cast<double>(poll_us) / kMicrosPerSecond);
        failing = std::move(message);
      }
    } else if (!failing.empty()) {
      spdlog::info("exporter: export passes succeed again");
      failing.clear();
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, stop, std::chrono::microseconds(poll_us), [] { return false; });
  }
}

}  // namespace sluice::exporter
