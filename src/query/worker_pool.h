// WorkerPool: the scheduling both SQL engines share. `workers` threads drain a queue of at most
// `max_queued` tasks; a task beyond that is refused at once as busy, so the HTTP I/O threads
// that submit queries never wait for one. It also keeps the metrics every query counts:
// sluice_queries_total{outcome}, sluice_query_seconds, sluice_queries_running and
// sluice_queries_queued (one family for both engines).
//
// Concurrency: thread-safe. Lifecycle: Start() and Stop() from one controlling thread; tasks
// run on the pool's threads, one at a time per worker, so per-worker state (a connection)
// indexed by the worker number needs no lock.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "query/sql_engine.h"

namespace sluice::query {

class WorkerPool {
 public:
  // A task runs with the number of its worker (0 … workers-1), or with kAbandoned when the
  // pool stops before running it.
  using Task = std::function<void(int worker)>;
  static constexpr int kAbandoned = -1;

  WorkerPool(int workers, int max_queued);
  ~WorkerPool() { Stop({}); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int workers() const { return workers_; }

  void Start();
  // Refuses new tasks, calls `interrupt` (if set; it should make running tasks end soon),
  // joins the threads, then runs the tasks still queued with kAbandoned. No-op when stopped.
  void Stop(const std::function<void()>& interrupt);

  // Queues `task`; Unavailable with a sentence when every worker is busy and the queue is
  // full, or when the pool is not running.
  Status Enqueue(Task task);

  // Runs `run` on a worker, counts its outcome and time, and calls `done` with its reply,
  // exactly once: kBusy "shutting down" when abandoned, kBusy with Enqueue's sentence (inline)
  // when refused.
  void SubmitQuery(std::function<QueryReply(int worker)> run, SqlEngine::QueryCallback done);

 private:
  void Run(int worker, std::stop_token stop);

  const int workers_;
  const int max_queued_;
  std::vector<std::jthread> threads_;  // changed only by Start() and Stop()

  std::mutex mu_;
  std::condition_variable_any cv_;
  // State below is protected by mu_.
  std::deque<Task> queue_;
  bool running_ = false;
};

}  // namespace sluice::query
