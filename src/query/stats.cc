#include "query/stats.h"

#include <future>
#include <memory>

#include "common/utf8.h"
#include "event/parser.h"
#include "query/engine_common.h"

namespace sluice::query {
namespace {

Result<int64_t> IntervalMicros(const std::string& interval) {
  if (interval == "1m") return kMicrosPerMinute;
  if (interval == "1h") return kMicrosPerHour;
  if (interval == "1d") return kMicrosPerDay;
  return Status::InvalidArgument("interval \"" + interval + "\" is not one of 1m, 1h, 1d");
}

}  // namespace

int64_t BucketStart(int64_t t_us, int64_t step_us) {
  return t_us - (((t_us % step_us) + step_us) % step_us);
}

Result<StatsPlan> PlanStats(const StatsRequest& request, int64_t now_us) {
  StatsPlan plan;
  plan.to_us = request.to_us.value_or(now_us);
  plan.from_us = request.from_us.value_or(plan.to_us - kMicrosPerHour);
  if (plan.from_us >= plan.to_us) {
    return Status::InvalidArgument("from (" + event::FormatTimestamp(plan.from_us) +
                                   ") must be before to (" + event::FormatTimestamp(plan.to_us) +
                                   ")");
  }
  plan.interval = request.interval;
  if (plan.interval.empty()) {
    // Unsigned: from and to come from the client, and their difference may not fit int64.
    const uint64_t span = static_cast<uint64_t>(plan.to_us) - static_cast<uint64_t>(plan.from_us);
    plan.interval = span <= uint64_t{6} * kMicrosPerHour   ? "1m"
                    : span <= uint64_t{14} * kMicrosPerDay ? "1h"
                                                           : "1d";
  }
  SLUICE_ASSIGN_OR_RETURN(plan.step_us, IntervalMicros(plan.interval));
  const uint64_t buckets = (static_cast<uint64_t>(BucketStart(plan.to_us - 1, plan.step_us)) -
                            static_cast<uint64_t>(BucketStart(plan.from_us, plan.step_us))) /
                               static_cast<uint64_t>(plan.step_us) +
                           1;
  if (buckets > static_cast<uint64_t>(kMaxStatsBuckets)) {
    return Status::InvalidArgument("from..to spans " + std::to_string(buckets) + " buckets of " +
                                   plan.interval + ", more than " +
                                   std::to_string(kMaxStatsBuckets) +
                                   "; use a larger interval or a shorter range");
  }
  // Stored names are UTF-8 without NUL (the stores refuse others), and the engines would not
  // agree on what such a filter means: refuse it in one sentence for both.
  if (request.event &&
      (!IsValidUtf8(*request.event) || request.event->find('\0') != std::string::npos)) {
    return Status::InvalidArgument("event must be UTF-8 text without NUL bytes");
  }
  plan.event = request.event;
  return plan;
}

StatsJson::StatsJson(const StatsPlan& plan, uint64_t max_points) : max_points_(max_points) {
  w_.BeginObject().Key("interval").String(plan.interval);
  w_.Key("from").String(event::FormatTimestamp(plan.from_us));
  w_.Key("to").String(event::FormatTimestamp(plan.to_us));
  w_.Key("series").BeginArray();
}

Status StatsJson::Add(int64_t bucket_us, std::string_view event, int64_t count) {
  if (points_ >= max_points_) {
    return Status::InvalidArgument("the stats have more than " + std::to_string(max_points_) +
                                   " points; filter by event or use a larger interval");
  }
  ++points_;
  w_.BeginObject().Key("t").String(event::FormatTimestamp(bucket_us));
  w_.Key("event").String(event);
  w_.Key("count").Int(count).EndObject();
  total_ += count;
  return Status::OK();
}

std::string StatsJson::Finish() {
  w_.EndArray().Key("total").Int(total_).EndObject();
  return w_.Take();
}

Status StatsTimedOut(std::chrono::milliseconds timeout) {
  return Status::DeadlineExceeded("the stats query ran longer than the " + LimitText(timeout) +
                                  " limit (--query-timeout) and was stopped");
}

Status StatsShuttingDown() { return Status::Unavailable("the query engine is shutting down"); }

Result<std::string> StatsEngine::Stats(const StatsRequest& request) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  StatsAsync(request, [&promise](Result<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void SubmitStats(WorkerPool& pool, std::function<Result<std::string>(int worker)> run,
                 StatsEngine::StatsCallback done) {
  auto shared_done = std::make_shared<StatsEngine::StatsCallback>(std::move(done));
  auto task = [run = std::move(run), shared_done](int worker) {
    if (worker == WorkerPool::kAbandoned) return (*shared_done)(StatsShuttingDown());
    (*shared_done)(run(worker));
  };
  if (Status st = pool.Enqueue(std::move(task)); !st.ok()) (*shared_done)(std::move(st));
}

}  // namespace sluice::query
