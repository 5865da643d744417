// Ad hoc commit-throughput measurement of DuckDbStore (not a test):
//   duckdb_store_bench DIR [events=400000] [batch=10000] [checkpoint_threshold=1GB] [export]
// Commits `events` realistic ~2 KB web-shop events (bench/event_generator.h, parsed by the real
// parser) in batches of `batch`, with their rollups, into a fresh DIR/hot.duckdb (DIR is
// deleted first), then CHECKPOINTs, and prints events/s and MB/s including that final
// checkpoint. With `export`, then exports every window twice and prints the wall and CPU time
// (the whole process: DuckDB's threads too) of each way: DuckDbStore::ExportWindowToParquet,
// and DuckDB's own COPY … TO … (FORMAT parquet) of the same rows in the hot database (what the
// store did before it exported through a ParquetWriter).
//   duckdb_store_bench export-only DATA_DIR
// does the exports alone on a stopped `sluice serve`'s hot store (e.g. after `sluice bench
// --mix seed`, whose events are less alike than this program's).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "store/duckdb_store.h"
#include "store/store_bench_util.h"

using namespace sluice;

namespace {

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void Report(const char* how, uint64_t rows, double wall, double cpu) {
  std::printf("export %-28s %8llu rows: %6.2f s wall, %6.2f s CPU (%.2f cores), %7.0f rows/s, "
              "%5.2f CPU µs/row\n",
              how, static_cast<unsigned long long>(rows), wall, cpu, cpu / wall,
              double(rows) / wall, cpu * 1e6 / double(rows));
}

// Exports every window through the store, then with DuckDB's COPY in the hot database.
bool ExportBoth(store::DuckDbStore& s, const std::string& dir) {
  auto windows = s.Windows();
  if (!windows.ok()) {
    std::fprintf(stderr, "windows: %s\n", windows.status().ToString().c_str());
    return false;
  }
  auto conn = duck::Connection::Open(s.database());
  for (const auto& w : *windows) {
    const std::string path = dir + "/objects/w" + std::to_string(w.start_us) + ".parquet";
    double c0 = CpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    auto rows = s.ExportWindowToParquet(w.start_us, path, {});
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!rows.ok()) {
      std::fprintf(stderr, "export: %s\n", rows.status().ToString().c_str());
      return false;
    }
    Report("ExportWindowToParquet", *rows, wall, CpuSeconds() - c0);
    store::ParquetOptions po;
    c0 = CpuSeconds();
    t0 = std::chrono::steady_clock::now();
    auto copied = (*conn)->Query(
        "COPY (SELECT event_id, type, event, user_id, anonymous_id, event_time, sent_at, "
        "received_at, properties, traits, context, source FROM " +
        duck::QuoteIdent(store::DuckDbStore::WindowTableName(w.start_us)) + ") TO " +
        duck::QuoteLiteral(path + ".copy") + " (FORMAT parquet, COMPRESSION zstd, "
        "COMPRESSION_LEVEL " + std::to_string(po.zstd_level) + ", ROW_GROUP_SIZE " +
        std::to_string(po.row_group_rows) + ")");
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!copied.ok()) {
      std::fprintf(stderr, "COPY: %s\n", copied.status().ToString().c_str());
      return false;
    }
    Report("COPY in the hot database", static_cast<uint64_t>(copied->Int64(0, 0)), wall,
           CpuSeconds() - c0);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "export-only") {
    // A stopped `sluice serve --data-dir DIR`'s hot store, as it is.
    const std::string dir = argv[2];
    store::DuckDbStoreOptions o;
    o.path = dir + "/hot.duckdb";
    o.sandbox.allowed_directories = {dir};
    auto opened = store::DuckDbStore::Open(o);
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    std::filesystem::create_directories(dir + "/objects");
    return ExportBoth(**opened, dir) ? 0 : 1;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [events] [batch] [checkpoint_threshold] [export]\n"
                 "       %s export-only DATA_DIR\n", argv[0], argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  if (dir.empty() || dir[0] == '-') {
    std::fprintf(stderr, "usage: %s DIR [events] [batch] [checkpoint_threshold] [export]\n"
                 "DIR is deleted and made afresh\n", argv[0]);
    return 2;
  }
  const bool do_export = argc > 5 && std::string(argv[5]) == "export";
  const size_t total = argc > 2 ? std::stoul(argv[2]) : 400'000;
  const size_t batch_size = argc > 3 ? std::stoul(argv[3]) : 10'000;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/objects/events");

  // A pool of distinct parsed events, reused with fresh ids and times.
  double mean_bytes = 0;
  const std::vector<event::Event> pool = store::bench_util::EventPool(20'000, &mean_bytes);

  store::DuckDbStoreOptions o;
  o.path = dir + "/hot.duckdb";
  o.parquet_glob = dir + "/objects/events/**/*.parquet";
  o.sandbox.allowed_directories = {dir};
  if (argc > 4) o.checkpoint_threshold = argv[4];
  auto opened = store::DuckDbStore::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto& s = **opened;

  std::vector<double> commit_s;
  auto start = std::chrono::steady_clock::now();
  size_t done = 0;
  store::Batch b;
  while (done < total) {
    const size_t n = std::min(batch_size, total - done);
    b.events.resize(n);
    for (size_t i = 0; i < n; ++i) store::bench_util::MakeEvent(pool, done + i, &b.events[i]);
    b.rollups = store::bench_util::RollupsOf(b.events);
    b.end_offset = done + n;
    auto c0 = std::chrono::steady_clock::now();
    if (Status st = s.CommitBatch(b); !st.ok()) {
      std::fprintf(stderr, "commit: %s\n", st.ToString().c_str());
      return 1;
    }
    commit_s.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
    done += n;
  }
  auto conn = duck::Connection::Open(s.database());
  auto c0 = std::chrono::steady_clock::now();
  if (Status st = (*conn)->Exec("CHECKPOINT"); !st.ok()) {
    std::fprintf(stderr, "checkpoint: %s\n", st.ToString().c_str());
  }
  const double final_ck =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(commit_s.begin(), commit_s.end());
  std::printf(
      "%zu events (%.0f B mean) in batches of %zu, checkpoint_threshold %s: %.2f s = "
      "%.0f events/s, %.1f MB/s (final checkpoint %.2f s); commit p50 %.1f ms, "
      "max %.0f ms; disk %.0f MB\n",
      total, mean_bytes, batch_size, o.checkpoint_threshold.c_str(), secs, double(total) / secs,
      double(total) * mean_bytes / secs / 1e6, final_ck, commit_s[commit_s.size() / 2] * 1e3,
      commit_s.back() * 1e3, double(*s.DiskBytes()) / 1e6);
  if (do_export) return ExportBoth(s, dir) ? 0 : 1;
  return 0;
}
