// Ad hoc commit-throughput measurement of DuckDbStore (not a test):
//   duckdb_store_bench DIR [events=400000] [batch=10000] [checkpoint_threshold=1GB]
// Commits `events` realistic ~2 KB web-shop events (bench/event_generator.h, parsed by the real
// parser) in batches of `batch`, with their rollups, into a fresh DIR/hot.duckdb, then
// CHECKPOINTs, and prints events/s and MB/s including that final checkpoint.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "store/duckdb_store.h"
#include "store/store_bench_util.h"

using namespace sluice;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [events] [batch] [checkpoint_threshold]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
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
  return 0;
}
