// Loads for integration tests, posting batches of events with unique messageIds to a running
// sluice:
//   PostBatches: a fixed number of events from several clients at once, each request once;
//     says how many were not acknowledged.
//   Load: clients that post until Stop() and remember which events were acknowledged (200). A
//     failed request (server killed, restarting) is retried on a new connection after 50 ms, so
//     a load survives outages of the server's peers and, after a kill, simply waits for Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/test_client.h"
#include "query_helpers.h"

namespace sluice::testing {

struct PostBatchesOptions {
  int clients = 4;
  int per_client = 50'000;  // events each client posts
  int batch = 500;          // events per request
  std::string prefix;       // messageIds are PREFIX<client>-<i> (see Batch)
};

// Each of `o.clients` threads posts its `o.per_client` events to /v1/batch on a connection of
// its own, `o.batch` a request, without retrying. Returns when all are done: the number of
// requests that were not answered 200 (no answer counts too).
inline int PostBatches(const std::string& address, const PostBatchesOptions& o) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.clients; ++t) {
    threads.emplace_back([&, t] {
      http::TestClient c(address);
      const std::string prefix = o.prefix + std::to_string(t) + "-";
      for (int i = 0; i < o.per_client; i += o.batch) {
        auto r = c.Post("/v1/batch", Batch(prefix, i, o.batch), kJson);
        if (!r.ok() || r->status != 200) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  return failures;
}

struct LoadOptions {
  int clients = 4;
  int batch = 50;                      // events per request
  std::string pad;                     // added to each event's properties (heavier rows)
  std::chrono::milliseconds pause{0};  // between one client's requests
};

class Load {
 public:
  Load(const std::string& address, LoadOptions options) {
    for (int t = 0; t < options.clients; ++t) {
      threads_.emplace_back([this, address, options, t] { Run(address, options, t); });
    }
  }
  ~Load() { Stop(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void Stop() {
    stop_ = true;
    for (auto& th : threads_) {
      if (th.joinable()) th.join();
    }
  }
  size_t Acked() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::set<std::string> AckedIds() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  // Answers other than 200 (503 when the buffer is full, …).
  int refused() const { return refused_; }
  // Of those, 503s that carried a Retry-After header.
  int unavailable_with_retry_after() const { return retry_after_; }

 private:
  void Run(const std::string& address, const LoadOptions& o, int t) {
    auto c = std::make_unique<http::TestClient>(address);
    for (int seq = 0; !stop_; ++seq) {
      const std::string prefix = "L" + std::to_string(t) + "-" + std::to_string(seq) + "-";
      auto r = c->Post("/v1/batch", Batch(prefix, 0, o.batch, o.pad), kJson);
      if (!r.ok()) {
        if (stop_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        c = std::make_unique<http::TestClient>(address);
        continue;
      }
      if (r->status == 200) {
        std::lock_guard lock(mu_);
        for (int i = 0; i < o.batch; ++i) acked_.insert(prefix + std::to_string(i));
      } else {
        ++refused_;
        if (r->status == 503 && !r->Header("retry-after").empty()) ++retry_after_;
      }
      if (o.pause.count() > 0) std::this_thread::sleep_for(o.pause);
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  std::atomic<int> retry_after_{0};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<std::string> acked_;  // protected by mu_
};

}  // namespace sluice::testing
