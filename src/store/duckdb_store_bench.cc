// Ad hoc commit-throughput measurement of DuckDbStore (not a test):
//   duckdb_store_bench DIR [events=400000] [batch=10000] [checkpoint_threshold=1GB]
// Commits `events` realistic ~2 KB web-shop events (bench/event_generator.h, parsed by the real
// parser) in batches of `batch`, with their rollups, into a fresh DIR/hot.duckdb, then
// CHECKPOINTs, and prints events/s and MB/s including that final checkpoint.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bench/event_generator.h"
#include "event/parser.h"
#include "store/duckdb_store.h"

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
  bench::EventGenerator gen(bench::EventGeneratorOptions{});
  bench::BodyBuilder builder(gen, bench::BodyFormat::kBatch, false);
  std::vector<event::Event> pool;
  std::string body;
  const int64_t t0 = 1714564800LL * 1'000'000;
  while (pool.size() < 20'000) {
    builder.Build(pool.size(), 500, t0, &body);
    event::ParseOutput out;
    if (Status st = event::Parse(event::Endpoint::kBatch, body, t0, {}, &out); !st.ok()) {
      std::fprintf(stderr, "parse: %s\n", st.ToString().c_str());
      return 1;
    }
    for (auto& e : out.events) {
      e.source = "bench";
      pool.push_back(std::move(e));
    }
  }
  double pool_bytes = 0;
  for (const auto& e : pool) {
    pool_bytes += double(e.event_id.size() + e.type.size() + e.event.size() + e.user_id.size() +
                         e.anonymous_id.size() + e.properties.size() + e.traits.size() +
                         e.context.size() + e.source.size() + 24);
  }
  const double mean_bytes = pool_bytes / double(pool.size());

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

  // 12,000 events/s of received_at: the design's average rate.
  const int64_t step_us = 1'000'000 / 12'000;
  std::vector<double> commit_s;
  auto start = std::chrono::steady_clock::now();
  size_t done = 0;
  store::Batch b;
  while (done < total) {
    const size_t n = std::min(batch_size, total - done);
    b.events.resize(n);
    b.rollups.clear();
    std::map<std::tuple<int64_t, std::string, std::string>, int64_t> counts;
    for (size_t i = 0; i < n; ++i) {
      const size_t seq = done + i;
      event::Event& e = b.events[i];
      e = pool[seq % pool.size()];
      e.event_id = "bench-" + std::to_string(seq);
      e.received_at_us = t0 + int64_t(seq) * step_us;
      e.event_time_us = e.received_at_us - 1000;
      ++counts[{e.event_time_us / 60'000'000 * 60'000'000, e.type, e.event}];
    }
    for (const auto& [k, c] : counts) {
      b.rollups.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), c});
    }
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
