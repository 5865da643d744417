// GET /v1/stats (DESIGN.md "HTTP"): event counts over time from the rollup table events_1m,
// answered by whichever hot store holds the rollups: DuckDB's QueryEngine (query_engine.h) or,
// with --store postgres://…, PostgresQueryEngine (postgres_query.h). What makes the two answer
// byte for byte alike lives here: the request's defaults and checks (PlanStats), the bucketing
// rule, the caps, the JSON document (StatsJson) and the sentences of the engine-side errors.
// Each engine only runs its dialect's query, which must return, for the plan's
// [from_us, to_us) and event filter, one row per (bucket, event) with
//   bucket = floor-aligned start of the minute's bucket in epoch microseconds (UTC):
//            m - ((m % step) + step) % step, so negative times floor too;
//   event  = the event name, "" for none (a NULL name and "" fall into one point);
//   count  = the sum of the rollup counts,
// ordered by bucket, then event by bytes (binary collation).
//
// Concurrency: PlanStats and the error functions are pure; a StatsJson belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/json_writer.h"
#include "common/status.h"
#include "query/worker_pool.h"

namespace sluice::query {

// The query parameters of GET /v1/stats, parsed but not yet checked.
struct StatsRequest {
  std::optional<int64_t> from_us;    // default: to - 1 h
  std::optional<int64_t> to_us;      // default: now
  std::string interval;              // "1m", "1h", "1d"; empty: chosen from the range
  std::optional<std::string> event;  // only this event name
};

inline constexpr int64_t kMicrosPerMinute = 60'000'000;
inline constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
inline constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;
// The most buckets one answer may span: a week of minutes.
inline constexpr int64_t kMaxStatsBuckets = 10'080;

// A checked request: what the engines query and StatsJson renders.
struct StatsPlan {
  int64_t from_us = 0;   // inclusive
  int64_t to_us = 0;     // exclusive, > from_us
  std::string interval;  // "1m", "1h" or "1d"
  int64_t step_us = 0;   // the interval in microseconds
  std::optional<std::string> event;
};

// Fills the defaults (to = `now_us`, from = to - 1 h; interval 1m up to 6 h, 1h up to 14 days,
// else 1d) and checks the request. InvalidArgument, with a sentence naming the fix, when from
// is not before to, the interval is not 1m/1h/1d, or from..to spans more than
// kMaxStatsBuckets floor-aligned buckets (the first holds from, the last holds to - 1), or the
// event is not UTF-8 or holds a NUL byte.
Result<StatsPlan> PlanStats(const StatsRequest& request, int64_t now_us);

// The start of the bucket of `step_us` that holds `t_us`: floor-aligned to multiples of the
// step since the Unix epoch, before 1970 too.
int64_t BucketStart(int64_t t_us, int64_t step_us);

// Renders the answer:
// {"interval":"1m","from":"…Z","to":"…Z","series":[{"t":"…Z","event":"…","count":N},…],
//  "total":N}
// from points added in the engines' order (see above).
class StatsJson {
 public:
  // At most `max_points` points (the engine's max_rows).
  StatsJson(const StatsPlan& plan, uint64_t max_points);

  // Appends one point. InvalidArgument ("the stats have more than N points; filter by event
  // or use a larger interval") for the point past max_points; nothing is appended then.
  Status Add(int64_t bucket_us, std::string_view event, int64_t count);
  uint64_t points() const { return points_; }
  // The document; the writer is spent afterwards.
  std::string Finish();

 private:
  const uint64_t max_points_;
  uint64_t points_ = 0;
  int64_t total_ = 0;
  JsonWriter w_;
};

// The stats query ran past the engine's timeout and was stopped (DeadlineExceeded, 504).
Status StatsTimedOut(std::chrono::milliseconds timeout);
// The engine stopped before or while answering (Unavailable, 503).
Status StatsShuttingDown();

// An engine that answers GET /v1/stats from the rollups it can read.
//
// Concurrency: implementations are thread-safe; StatsAsync never blocks its caller.
class StatsEngine {
 public:
  using StatsCallback = std::function<void(Result<std::string>)>;

  virtual ~StatsEngine() = default;

  // Answers `request` with the StatsJson document, without blocking: `done` is called exactly
  // once, on a worker thread (or inline when refused at once). InvalidArgument for what
  // PlanStats refuses and for more than the engine's max_rows points, DeadlineExceeded after
  // its timeout, Unavailable when busy, stopped or the database is unreachable,
  // ResourceExhausted over the database's memory limits, other codes when the engine failed.
  virtual void StatsAsync(StatsRequest request, StatsCallback done) = 0;

  // The same, waiting for the answer (so never call it from a callback of this engine).
  Result<std::string> Stats(const StatsRequest& request);
};

// StatsAsync's scheduling, for the engines: runs `run` on one of `pool`'s workers (with the
// worker's number) and calls `done` with its answer exactly once: StatsShuttingDown() when the
// pool stops before running it, Enqueue's Unavailable (inline) when it is busy or stopped.
void SubmitStats(WorkerPool& pool, std::function<Result<std::string>(int worker)> run,
                 StatsEngine::StatsCallback done);

}  // namespace sluice::query
