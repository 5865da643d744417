#include "query/worker_pool.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>

#include "common/metrics.h"
#include "common/thread_priority.h"

namespace sluice::query {
namespace {

struct QueryMetrics {
  static metrics::Counter& Outcome(QueryOutcome o) {
    return metrics::Default().GetCounter("sluice_queries_total",
                                         "SQL queries (POST /v1/query, sluice query) by outcome",
                                         {{"outcome", std::string(OutcomeName(o))}});
  }
  metrics::Histogram& seconds = metrics::Default().GetHistogram(
      "sluice_query_seconds", "Time to run a SQL query and render its result", {},
      {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
  metrics::Gauge& running = metrics::Default().GetGauge(
      "sluice_queries_running", "SQL queries and stats requests running now");
  metrics::Gauge& queued = metrics::Default().GetGauge(
      "sluice_queries_queued", "SQL queries and stats requests waiting for a query worker");
  std::array<metrics::Counter*, 7> outcomes = {
      &Outcome(QueryOutcome::kOk),          &Outcome(QueryOutcome::kInvalid),
      &Outcome(QueryOutcome::kTimeout),     &Outcome(QueryOutcome::kTooManyRows),
      &Outcome(QueryOutcome::kOutOfMemory), &Outcome(QueryOutcome::kBusy),
      &Outcome(QueryOutcome::kError)};
  void Count(QueryOutcome o) { outcomes[static_cast<size_t>(o)]->Inc(); }
};

QueryMetrics& Metrics() {
  static QueryMetrics* m = new QueryMetrics();
  return *m;
}

}  // namespace

WorkerPool::WorkerPool(int workers, int max_queued)
    : workers_(workers), max_queued_(std::max(0, max_queued)) {
  SLUICE_CHECK(workers > 0);
  Metrics();  // register the metric families, so /metrics shows them from the start
}

void WorkerPool::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  running_ = true;
  threads_.clear();
  for (int i = 0; i < workers_; ++i) {
    threads_.emplace_back([this, i](std::stop_token stop) { Run(i, stop); });
  }
}

void WorkerPool::Stop(const std::function<void()>& interrupt) {
  std::deque<Task> abandoned;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    running_ = false;
    abandoned.swap(queue_);
    for (auto& t : threads_) t.request_stop();
  }
  Metrics().queued.Add(-static_cast<int64_t>(abandoned.size()));
  if (interrupt) interrupt();
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& t : abandoned) t(kAbandoned);
}

Status WorkerPool::Enqueue(Task task) {
  {
    std::lock_guard lock(mu_);
    if (!running_) return Status::Unavailable("the query engine is not running");
    if (queue_.size() >= static_cast<size_t>(max_queued_)) {
      return Status::Unavailable("all " + std::to_string(workers_) +
                                 " query workers are busy and " + std::to_string(max_queued_) +
                                 " queries are waiting; retry shortly");
    }
    queue_.push_back(std::move(task));
  }
  Metrics().queued.Add(1);
  cv_.notify_one();
  return Status::OK();
}

void WorkerPool::Run(int worker, std::stop_token stop) {
  // Queries are bulk work next to ingest (common/thread_priority.h); a failure only means they
  // keep the ingest path's priority.
  (void)EnterBackground();
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [&] { return !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    auto& m = Metrics();
    m.queued.Add(-1);
    m.running.Add(1);
    task(stop.stop_requested() ? kAbandoned : worker);
    m.running.Add(-1);
  }
}

void WorkerPool::SubmitQuery(std::function<QueryReply(int worker)> run,
                             SqlEngine::QueryCallback done) {
  auto shared_done = std::make_shared<SqlEngine::QueryCallback>(std::move(done));
  auto task = [run = std::move(run), shared_done](int worker) {
    auto& m = Metrics();
    if (worker == kAbandoned) {
      m.Count(QueryOutcome::kBusy);
      return (*shared_done)(
          {QueryOutcome::kBusy, Status::Unavailable("the query engine is shutting down")});
    }
    auto t0 = std::chrono::steady_clock::now();
    QueryReply reply = run(worker);
    m.seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    m.Count(reply.outcome);
    (*shared_done)(std::move(reply));
  };
  if (Status st = Enqueue(std::move(task)); !st.ok()) {
    Metrics().Count(QueryOutcome::kBusy);
    (*shared_done)({QueryOutcome::kBusy, std::move(st)});
  }
}

}  // namespace sluice::query
