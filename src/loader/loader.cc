#include "loader/loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "common/metrics.h"
#include "common/thread_priority.h"
#include "event/event.h"

namespace sluice::loader {
namespace {

constexpr int64_t kMinuteUs = 60'000'000;

struct LoaderMetrics {
  metrics::Counter& batches = metrics::Default().GetCounter(
      "sluice_loader_batches_total", "Batches committed to the hot store");
  metrics::Counter& events = metrics::Default().GetCounter(
      "sluice_loader_events_total", "Events committed to the hot store");
  metrics::Counter& duplicates = metrics::Default().GetCounter(
      "sluice_loader_duplicates_total", "Events dropped as client retries (event_id seen)");
  metrics::Counter& rejections = metrics::Default().GetCounter(
      "sluice_loader_rejections_total", "Quarantine records committed to events_rejected");
  metrics::Counter& errors = metrics::Default().GetCounter(
      "sluice_loader_errors_total", "Failed buffer reads or hot store commits (retried)");
  metrics::Histogram& batch_seconds = metrics::Default().GetHistogram(
      "sluice_loader_commit_seconds", "Time to commit one batch to the hot store");
};

LoaderMetrics& Metrics() {
  static LoaderMetrics* m = new LoaderMetrics();
  return *m;
}

// The loader's read-ahead: one long-lived thread that runs one task at a time (the next
// batch's Prepare while the loader commits the current one). It replaced a std::async thread
// per batch (a clone and a fresh stack five times a second at 15,000 events/s, and each
// batch's allocations made in whatever glibc arena the new thread got, freed from the
// committing thread): in an 8 s profile at 15,000 events/s those threads took 27% of the
// server's samples, mostly malloc internals and page clearing (BENCHMARKS.md, seed workload).
// The thread inherits its creator's priority (the loader's background nice).
class ReadAhead {
 public:
  ReadAhead() : thread_([this](const std::stop_token& stop) { Loop(stop); }) {}
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Runs `task` on the read-ahead thread. The previous task must have been waited for.
  void Start(std::function<Status()> task) {
    std::lock_guard lock(mu_);
    task_ = std::move(task);
    done_ = false;
    cv_.notify_all();
  }
  // Waits for the task Start() gave and returns its status.
  Status Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return std::move(result_);
  }

 private:
  void Loop(const std::stop_token& stop) {
    std::unique_lock lock(mu_);
    while (cv_.wait(lock, stop, [&] { return task_ != nullptr; })) {
      std::function<Status()> task = std::move(task_);
      task_ = nullptr;
      lock.unlock();
      Status st = task();
      lock.lock();
      result_ = std::move(st);
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  // State below is protected by mu_.
  std::function<Status()> task_;
  Status result_;
  bool done_ = true;
  std::jthread thread_;  // last: starts once the members above exist, and joins first
};

struct FingerprintHash {
  size_t operator()(const Fingerprint& f) const { return static_cast<size_t>(f.lo); }
};

}  // namespace

Loader::Loader(LoaderOptions options, buffer::Buffer* buffer, store::HotStore* store,
               Clock* clock)
    : options_(std::move(options)),
      buffer_(buffer),
      store_(store),
      clock_(clock),
      dedup_(std::chrono::duration_cast<std::chrono::microseconds>(options_.dedup_window).count(),
             options_.dedup_max_ids) {}

Loader::~Loader() { Stop(); }

Status Loader::Init() {
  SLUICE_ASSIGN_OR_RETURN(next_offset_, store_->CommittedOffset(options_.shard));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_received, store_->MaxReceivedAt());
  int64_t window_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.dedup_window).count();
  // Prepared batches that were never committed (a DrainOnce that failed) left their ids in
  // the set: start from what the store holds, nothing else.
  dedup_.Clear();
  // The store yields ids, not their times; stamp them with max_received so they are kept for
  // one more window (conservative: a retry within the window is still caught).
  Status st = store_->ForEachEventIdSince(max_received - window_us, [&](std::string_view id) {
    dedup_.Insert(FingerprintOf(id), max_received);
  });
  SLUICE_RETURN_IF_ERROR(st);
  // The buffer may have freed segments below our offset, never above it — unless it lost
  // records the store already has (a Redis restarted from an older AOF): then it must hand
  // out offsets above ours from now on.
  if (buffer_->Stats().next_offset < next_offset_) {
    SLUICE_RETURN_IF_ERROR(buffer_->AdvanceTo(next_offset_));
  }
  SLUICE_RETURN_IF_ERROR(buffer_->Commit(next_offset_));
  std::lock_guard lock(mu_);
  stats_.committed_offset = next_offset_;
  stats_.max_received_at_us = max_received;
  spdlog::info("loader: resuming shard {} at offset {} ({} recent ids for dedup)", options_.shard,
               next_offset_, dedup_.size());
  return Status::OK();
}

Status Loader::Start() {
  SLUICE_RETURN_IF_ERROR(Init());
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  return Status::OK();
}

void Loader::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

Status Loader::DrainOnce() {
  SLUICE_RETURN_IF_ERROR(Init());
  return Pump(std::stop_token(), /*drain=*/true);
}

void Loader::Run(std::stop_token stop) {
  if (Status st = EnterBackground(); !st.ok()) {
    spdlog::warn("loader: runs at the ingest path's priority: {}", st.ToString());
  }
  // Errors are retried inside; Pump returns only when stopping.
  static_cast<void>(Pump(stop, /*drain=*/false));
}

void Loader::NoteError(const Status& st) {
  Metrics().errors.Inc();
  std::lock_guard lock(mu_);
  stats_.last_error = st.ToString();
}

Status Loader::Pump(std::stop_token stop, bool drain) {
  // A background loader waits for records; DrainOnce does not.
  const auto wait = drain ? std::chrono::milliseconds(0) : std::chrono::milliseconds(500);
  auto backoff = std::chrono::milliseconds(100);
  auto pause = [&](const Status& st) {
    NoteError(st);
    if (st.code() == StatusCode::kAborted) {
      // The buffer says another consumer moved on (a Redis stream's lease lapsed): resume
      // from what the store holds.
      spdlog::warn("loader: {}; re-reading the store's offset", st.ToString());
      if (Status init = Init(); !init.ok()) NoteError(init);
    }
    spdlog::error("loader: {}; retrying in {} ms", st.ToString(), backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  };
  Prepared cur;
  bool have = false;
  ReadAhead read_ahead;
  while (!stop.stop_requested()) {
    if (!have) {
      Status st = Prepare(next_offset_, wait, &cur);
      if (!st.ok()) {
        if (drain) return st;
        pause(st);
        continue;
      }
      if (cur.empty()) {
        // Nothing read and nothing in flight: everything acknowledged so far is loaded.
        std::lock_guard lock(mu_);
        stats_.drained = true;
        if (drain) return Status::OK();
        continue;
      }
      have = true;
    }
    // Read and decode the next batch on the read-ahead thread while this one commits.
    Prepared next;
    read_ahead.Start([&] { return Prepare(cur.batch.end_offset, wait, &next); });
    Status committed = Commit(cur, /*retry_forever=*/!drain);
    Status st = read_ahead.Wait();
    if (committed.code() == StatusCode::kAborted && !drain) {
      // Fenced off (another loader moved the shard): drop both batches, resume from the
      // store's offset (pause re-reads it).
      pause(committed);
      have = false;
      continue;
    }
    // Only the background loop retries other commit errors; it returns here only when stopping.
    if (!committed.ok()) return committed;
    backoff = std::chrono::milliseconds(100);
    if (!st.ok()) {
      if (drain) return st;
      pause(st);
      have = false;
    } else if (next.empty()) {
      // `cur` is committed and nothing followed it: the buffer is drained.
      std::lock_guard lock(mu_);
      stats_.drained = true;
      if (drain) return Status::OK();
      have = false;
    } else {
      cur = std::move(next);
    }
  }
  return Status::OK();
}

Status Loader::Prepare(uint64_t from, std::chrono::milliseconds wait, Prepared* out) {
  *out = Prepared{};
  auto first = buffer_->Read(from, options_.max_batch_records, options_.max_batch_bytes, wait);
  if (!first.ok()) return first.status().WithContext("reading the buffer");
  if (first->empty()) return Status::OK();
  std::vector<buffer::Record> records = std::move(first).value();
  size_t bytes = 0;
  for (const auto& r : records) bytes += r.payload.size();
  // Keep reading until the batch is full or max_batch_delay has passed since its first record.
  const int64_t deadline = clock_->MonotonicMicros() +
      std::chrono::duration_cast<std::chrono::microseconds>(options_.max_batch_delay).count();
  while (records.size() < options_.max_batch_records && bytes < options_.max_batch_bytes &&
         !stopping_.load()) {
    int64_t remaining_us = deadline - clock_->MonotonicMicros();
    if (remaining_us <= 0) break;
    auto more = buffer_->Read(records.back().offset + 1,
                              options_.max_batch_records - records.size(),
                              options_.max_batch_bytes - bytes,
                              std::chrono::milliseconds(remaining_us / 1000));
    if (!more.ok()) return more.status().WithContext("reading the buffer");
    if (more->empty()) break;
    for (auto& r : *more) {
      bytes += r.payload.size();
      records.push_back(std::move(r));
    }
  }

  store::Batch& batch = out->batch;
  batch.shard = options_.shard;
  batch.start_offset = from;  // the fence: the store must still be where we read from
  batch.end_offset = records.back().offset + 1;
  batch.events.reserve(records.size());
  std::vector<Fingerprint> fps;
  std::vector<int64_t> received;
  fps.reserve(records.size());
  received.reserve(records.size());
  // Ids seen earlier in this batch, with their received_at: the window applies here too.
  std::unordered_map<Fingerprint, int64_t, FingerprintHash> in_batch;
  in_batch.reserve(records.size());
  const int64_t window_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.dedup_window).count();
  std::map<std::tuple<int64_t, std::string, std::string>, int64_t> rollup;
  for (auto& r : records) {
    auto decoded = event::DecodeRecord(r.payload);
    if (!decoded.ok()) {
      batch.rejections.push_back(event::Rejection{
          clock_->NowMicros(), "",
          "undecodable buffer record at offset " + std::to_string(r.offset) + ": " +
              decoded.status().message(),
          std::move(r.payload)});
      continue;
    }
    if (auto* rej = std::get_if<event::Rejection>(&*decoded)) {
      batch.rejections.push_back(std::move(*rej));
      continue;
    }
    auto& e = std::get<event::Event>(*decoded);
    Fingerprint fp = FingerprintOf(e.event_id);
    auto [seen, first_time] = in_batch.try_emplace(fp, e.received_at_us);
    if (dedup_.Contains(fp) ||
        (!first_time && e.received_at_us - seen->second <= window_us)) {
      ++out->duplicates;
      continue;
    }
    seen->second = e.received_at_us;
    fps.push_back(fp);
    received.push_back(e.received_at_us);
    out->max_received_at_us = std::max(out->max_received_at_us, e.received_at_us);
    int64_t minute = e.event_time_us - ((e.event_time_us % kMinuteUs) + kMinuteUs) % kMinuteUs;
    ++rollup[{minute, e.type, e.event}];
    batch.events.push_back(std::move(e));
  }
  for (size_t i = 0; i < fps.size(); ++i) dedup_.Insert(fps[i], received[i]);
  batch.rollups.reserve(rollup.size());
  for (auto& [key, count] : rollup) {
    batch.rollups.push_back(
        store::RollupRow{std::get<0>(key), std::get<1>(key), std::get<2>(key), count});
  }
  return Status::OK();
}

Status Loader::Commit(Prepared& p, bool retry_forever) {
  const store::Batch& batch = p.batch;
  int64_t t0 = clock_->MonotonicMicros();
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    Status st = store_->CommitBatch(batch);
    if (st.ok()) break;
    NoteError(st);
    // Another loader moved the shard: retrying the same batch can never succeed.
    if (st.code() == StatusCode::kAborted) return st.WithContext("committing to the hot store");
    {
      std::lock_guard lock(mu_);
      stats_.commit_errors++;
    }
    // The background loop never skips a batch: it retries until the store takes it or
    // Stop(). DrainOnce (a command run by a person) reports the error instead of hanging.
    if (!retry_forever || stopping_.load()) return st.WithContext("committing to the hot store");
    spdlog::error("loader: commit of offsets up to {} failed: {}; retrying in {} ms",
                  batch.end_offset, st.ToString(), backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  Metrics().batch_seconds.Observe(static_cast<double>(clock_->MonotonicMicros() - t0) / 1e6);

  next_offset_ = batch.end_offset;
  if (Status st = buffer_->Commit(next_offset_); !st.ok()) {
    spdlog::warn("loader: the buffer did not take offset {}: {}", next_offset_, st.ToString());
  }
  auto& m = Metrics();
  m.batches.Inc();
  m.events.Inc(batch.events.size());
  m.duplicates.Inc(p.duplicates);
  m.rejections.Inc(batch.rejections.size());
  std::lock_guard lock(mu_);
  stats_.committed_offset = next_offset_;
  stats_.batches++;
  stats_.events += batch.events.size();
  stats_.duplicates += p.duplicates;
  stats_.rejections += batch.rejections.size();
  stats_.max_received_at_us = std::max(stats_.max_received_at_us, p.max_received_at_us);
  stats_.drained = false;
  stats_.last_error.clear();
  return Status::OK();
}

int64_t Loader::Watermark() const {
  std::lock_guard lock(mu_);
  return stats_.drained ? std::max(stats_.max_received_at_us, clock_->NowMicros())
                        : stats_.max_received_at_us;
}

LoaderStats Loader::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace sluice::loader
