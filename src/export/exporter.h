// Exporter: moves closed windows of received_at from the hot store to the object store as
// Parquet files, records them in the manifest, and drops hot rows past the retention.
//
// Closing (DESIGN.md "Windows close on a watermark"): the hot store's window [s, e) is closed
// when e + grace <= watermark, the watermark being what the owner's callback returns — the
// position every buffer shard's loader has passed. CloseRule::kWatermarkOnly (for
// `sluice export --once`) drops the grace: every window with e <= watermark is closed.
//
// One pass (RunOnce) exports the closed, unexported windows in start order. Per window:
//   1. HotStore::ExportWindowToParquet into a temporary file in options.tmp_dir;
//   2. size and SHA-256 of that file;
//   3. ObjectStore::PutFile to ParquetKey(start, shard);
//   4. ObjectStore::Head, checking the stored size;
//   5. ObjectStore::PutBytes of the manifest entry at ManifestKey(start, shard);
//   5b. options.on_uploaded, if set (the history cache takes the file);
//   6. HotStore::MarkExported(start, rows);
//   7. the temporary file is removed (also when a step fails).
// A failing step ends the window there: no manifest entry unless step 5 ran, no MarkExported,
// no temporary file. The pass stops at the first failing window, so no window is ever
// exported (or marked) while an earlier closed window is not: the store's "first unexported
// window" boundary stays meaningful. The next pass retries the same window; a rerun writes
// the same two keys (an overwrite, never a second file). A window the store un-marks (late
// rows arrived) is exported again the same way.
//
// Retention, after the exports of every pass: each window that the store marks exported,
// whose end + hot_retention <= now (the injected Clock), and whose Parquet object and
// manifest entry both exist in the object store, is dropped from the hot store
// (HotStore::DropWindow). A marked window whose objects are missing keeps its rows and is
// reported as an error (DESIGN.md: hot rows go only once their window is in the object store
// and the manifest).
//
// Pacing (options.spread > 0): when a pass of the background loop finds exactly one window
// due — the exporter is keeping up — the export is held to PaceRowsPerSecond(window rows,
// spread, window length), so that it takes about spread × the window length instead of
// running flat out: the CPU and page-cache churn of an export are spread out and the ingest
// path sharing the machine sees less of them at once. The store calls ParquetOptions::pace
// as it streams the rows (PostgreSQL after each chunk, DuckDB between slices); a backlog of
// windows, RunOnce and a Stop() request run at full speed.
//
// Metrics (metrics::Default()): sluice_export_windows_total, sluice_export_rows_total,
// sluice_export_bytes_total, sluice_export_errors_total (one per failed pass),
// sluice_export_seconds (histogram per window, up to 600 s), gauges
// sluice_export_pace_rows_per_second (the running export's pace; 0 when none or unpaced),
// sluice_export_last_window_end_seconds, sluice_hot_windows, and sluice_object_store_bytes /
// sluice_object_store_files: the Parquet objects under events/, listed once by the first pass
// that can list them and kept up to date by this exporter's uploads (objects another process
// writes or deletes show after a restart).
//
// Concurrency: thread-safe. Passes are serialised (RunOnce from another thread waits for the
// running pass). Start() runs passes every poll_us on a background thread until Stop();
// no thread runs before Start(). The HotStore, ObjectStore, watermark callback and Clock
// must outlive the Exporter; the callback is called from the pass's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "export/manifest.h"
#include "objstore/object_store.h"
#include "store/hot_store.h"

namespace sluice::exporter {

struct WindowExport;

struct ExporterOptions {
  // The export interval. The hot store's windows are authoritative for the bounds of each
  // export; this must be a whole number of minutes (file names show minutes) and sets the
  // default poll interval.
  int64_t window_us = 10 * 60 * 1'000'000LL;
  // Added to a window's end before it closes: client-to-server clock skew and the
  // ingest→buffer delay.
  int64_t grace_us = 30 * 1'000'000LL;
  // Exported windows keep their hot rows this long after their end.
  int64_t hot_retention_us = 2 * 3600 * 1'000'000LL;
  // The hot-store shard in file names ("…-disk.parquet"): 1 to 64 of [A-Za-z0-9_-].
  std::string shard = "disk";
  store::ParquetOptions parquet;
  // Local directory for files being exported (created if missing; inside the data dir). The
  // exporter owns it: leftover "export-*.parquet" files from a crash are removed on the first
  // pass.
  std::string tmp_dir;
  // How often the background loop runs a pass; 0 means min(window_us, 10 s).
  int64_t poll_us = 0;
  // 0 (off) .. 1: the share of the window length a paced export should take (see Pacing).
  double spread = 0;
  // Called on the exporter's thread after a window's object and manifest entry are written
  // and before the hot store marks it exported, with the entry and the local file that was
  // uploaded (removed after the call): e.g. to put the file in the local history cache, which
  // the hot store's view reads once the window is marked. A failure fails the window's export
  // (no mark; the next pass exports it again).
  std::function<Status(const ManifestEntry&, const std::string& local_file)> on_uploaded;
  // Called on the exporter's thread after a window is in the manifest and marked exported
  // (e.g. to refresh a query view over the Parquet history). Must not call the exporter.
  std::function<void(const WindowExport&)> on_exported;
};

// OK, or InvalidArgument naming the bad option.
Status ValidateExporterOptions(const ExporterOptions& options);

// A paced export never goes slower than this: small windows are not stretched out for nothing.
inline constexpr double kMinPaceRowsPerSecond = 10'000;

// The pace for a window of `rows` rows that should take spread × window_us: rows per second,
// at least kMinPaceRowsPerSecond; 0 (unpaced) when spread <= 0 or window_us <= 0.
double PaceRowsPerSecond(uint64_t rows, double spread, int64_t window_us);

// How long to wait, after `rows_done` rows in `elapsed_us`, to stay at `rows_per_second`:
// 0 when the export is behind that pace or unpaced (rows_per_second <= 0).
int64_t PaceDelayUs(uint64_t rows_done, double rows_per_second, int64_t elapsed_us);

enum class CloseRule {
  kWatermarkPlusGrace,  // [s, e) is closed when e + grace <= watermark (normal operation)
  kWatermarkOnly,       // when e <= watermark (`sluice export --once`: flush what is loaded)
};

struct WindowExport {
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::string key;  // the Parquet object
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;
  double seconds = 0;  // steps 1-6, by the injected clock's monotonic time
};

struct ExportReport {
  int64_t watermark_us = 0;            // what the callback returned for this pass
  std::vector<WindowExport> exported;  // in start order
  std::vector<int64_t> dropped;        // starts of the windows whose hot rows were dropped
  uint64_t pending = 0;  // closed windows still unexported after the pass (after a failure)
  Status error;          // the pass's first failure; OK when everything it tried worked
};

// A few lines for operators (`sluice export --once`): each window exported (start, rows,
// bytes, seconds, key), the windows dropped, what is still pending, and the error if any.
std::string FormatReport(const ExportReport& report);

class Exporter {
 public:
  Exporter(ExporterOptions options, store::HotStore* store, objstore::ObjectStore* objects,
           std::function<int64_t()> watermark, Clock* clock = SystemClock());
  ~Exporter();  // Stop()
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Runs one pass as described above. A non-OK Result means the pass did nothing: invalid
  // options, the tmp dir cannot be created, or the store cannot list its windows. Otherwise
  // the report says what was exported and dropped, and report.error holds the first
  // failure of a window export or of retention (the exports before it stand).
  Result<ExportReport> RunOnce(CloseRule rule = CloseRule::kWatermarkPlusGrace);

  // Starts the background loop (one pass, then one every poll interval). Logs a failure
  // once when it starts and once when passes succeed again, not on every poll. Calling
  // Start twice is a programmer error.
  void Start();
  // Wakes the loop, lets the window being exported finish, and joins. Idempotent.
  void Stop();

  const ExporterOptions& options() const { return options_; }

  static constexpr size_t kRecentExports = 10;
  // The last kRecentExports windows this exporter exported, newest first (for the dashboard).
  std::vector<WindowExport> RecentExports() const;

 private:
  Result<ExportReport> RunPass(CloseRule rule, const std::stop_token& stop);
  // pace_rows_per_second 0: as fast as the store goes. Pacing waits end at a `stop` request.
  Status ExportWindow(const store::WindowInfo& window, double pace_rows_per_second,
                      const std::stop_token& stop, WindowExport* out);
  Status ApplyRetention(const std::vector<store::WindowInfo>& windows, ExportReport* report);
  void RemoveStaleTempFiles();
  // Under pass_mu_: list the Parquet objects once, and set the size gauges from the list.
  void CountObjects();
  void PublishObjectSizes();
  void Loop(const std::stop_token& stop);

  const ExporterOptions options_;
  store::HotStore* const store_;
  objstore::ObjectStore* const objects_;
  const std::function<int64_t()> watermark_;
  Clock* const clock_;

  metrics::Counter& windows_total_;
  metrics::Counter& rows_total_;
  metrics::Counter& bytes_total_;
  metrics::Counter& errors_total_;
  metrics::Histogram& seconds_;
  metrics::Gauge& pace_;
  metrics::Gauge& last_window_end_;
  metrics::Gauge& hot_windows_;
  metrics::Gauge& object_bytes_;
  metrics::Gauge& object_files_;

  std::mutex pass_mu_;  // held for a whole pass
  // State below is protected by pass_mu_.
  bool cleaned_tmp_dir_ = false;
  bool objects_listed_ = false;
  std::map<std::string, uint64_t> object_sizes_;  // Parquet key -> bytes, once listed

  mutable std::mutex recent_mu_;
  // State below is protected by recent_mu_.
  std::deque<WindowExport> recent_;  // newest first

  std::mutex wake_mu_;  // pairs with wake_cv_ for the loop's sleep
  std::condition_variable_any wake_cv_;
  std::jthread thread_;  // the background loop; only Start and Stop touch it
};

}  // namespace sluice::exporter
