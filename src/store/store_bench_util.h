// Events for the hot store benchmarks (header-only): realistic ~2 KB web-shop events from
// bench/event_generator.h, parsed by the real parser, reused with fresh ids and times.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bench/event_generator.h"
#include "event/parser.h"
#include "store/hot_store.h"

namespace sluice::store::bench_util {

inline constexpr int64_t kT0 = 1714564800LL * 1'000'000;  // 2024-05-01T12:00:00Z
inline constexpr int64_t kStepUs = 1'000'000 / 12'000;      // 12,000 events/s: DESIGN.md's mean

// `n` distinct parsed events (source "bench"); *mean_bytes gets the mean size of their stored
// fields. Exits the program if the generator's bodies do not parse (a bug, not a measurement).
inline std::vector<event::Event> EventPool(size_t n, double* mean_bytes) {
  bench::EventGenerator gen(bench::EventGeneratorOptions{});
  bench::BodyBuilder builder(gen, bench::BodyFormat::kBatch, false);
  std::vector<event::Event> pool;
  std::string body;
  while (pool.size() < n) {
    builder.Build(pool.size(), 500, kT0, &body);
    event::ParseOutput out;
    if (Status st = event::Parse(event::Endpoint::kBatch, body, kT0, {}, &out); !st.ok()) {
      std::fprintf(stderr, "parse: %s\n", st.ToString().c_str());
      std::exit(1);
    }
    for (auto& e : out.events) {
      e.source = "bench";
      pool.push_back(std::move(e));
    }
  }
  double bytes = 0;
  for (const auto& e : pool) {
    bytes += double(e.event_id.size() + e.type.size() + e.event.size() + e.user_id.size() +
                    e.anonymous_id.size() + e.properties.size() + e.traits.size() +
                    e.context.size() + e.source.size() + 24);
  }
  *mean_bytes = bytes / double(pool.size());
  return pool;
}

// Event number `seq` of a run: a pool event with id "bench-<seq>", received kStepUs after
// event seq - 1.
inline void MakeEvent(const std::vector<event::Event>& pool, uint64_t seq, event::Event* e) {
  *e = pool[seq % pool.size()];
  e->event_id = "bench-" + std::to_string(seq);
  e->received_at_us = kT0 + int64_t(seq) * kStepUs;
  e->event_time_us = e->received_at_us - 1000;
}

// The rollup rows of `events` (per minute of event_time, type, event).
inline std::vector<RollupRow> RollupsOf(const std::vector<event::Event>& events) {
  std::map<std::tuple<int64_t, std::string, std::string>, int64_t> counts;
  for (const auto& e : events) {
    ++counts[{e.event_time_us / 60'000'000 * 60'000'000, e.type, e.event}];
  }
  std::vector<RollupRow> rows;
  for (const auto& [k, c] : counts) rows.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), c});
  return rows;
}

}  // namespace sluice::store::bench_util
