#include "bench/raw_xadd.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "bench/event_generator.h"
#include "bench/histogram.h"
#include "bench/request_mix.h"
#include "bench/run_common.h"
#include "buffer/redis_streams.h"

namespace sluice::bench {
namespace {

using buffer::RedisContextPtr;
using buffer::RedisUrl;
using internal::Seconds;
using internal::SteadyClock;
using internal::WorkerStats;
using std::chrono::duration_cast;
using std::chrono::microseconds;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A batch's replies that have not all arrived after this long count as a timeout.
constexpr auto kRequestTimeout = std::chrono::seconds(60);
// DEL of a stream of a few GB takes seconds; it gets this long.
constexpr auto kCleanupTimeout = std::chrono::seconds(300);
constexpr auto kMinBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);

timeval ToTimeval(SteadyClock::duration d) {
  const auto us = duration_cast<microseconds>(d).count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return tv;
}

std::string ContextError(const redisContext* c) {
  return c != nullptr && c->err != 0 ? std::string(c->errstr) : std::string("no reply");
}

// Runs one command on `c`; an error reply is Internal with Redis's message.
Result<ReplyPtr> Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  if (!reply) return Status::Unavailable("redis " + args[0] + ": " + ContextError(c));
  if (reply->type == REDIS_REPLY_ERROR) {
    return Status::Internal("redis " + args[0] + ": " + std::string(reply->str, reply->len));
  }
  return reply;
}

// A connection to `url`, authenticated and on its db, with `timeout` for every command.
Result<RedisContextPtr> Connect(const RedisUrl& url, SteadyClock::duration connect_timeout,
                                SteadyClock::duration timeout) {
  const std::string where = url.host + ":" + std::to_string(url.port);
  RedisContextPtr c(
      redisConnectWithTimeout(url.host.c_str(), url.port, ToTimeval(connect_timeout)));
  if (!c) return Status::Unavailable("redis " + where + ": cannot allocate a context");
  if (c->err != 0) return Status::Unavailable("redis " + where + ": " + c->errstr);
  if (redisSetTimeout(c.get(), ToTimeval(timeout)) != REDIS_OK) {
    return Status::Unavailable("redis " + where +
                               ": setting the timeout: " + ContextError(c.get()));
  }
  if (!url.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    if (auto r = Command(c.get(), auth); !r.ok()) return r.status();
  }
  if (url.db != 0) {
    if (auto r = Command(c.get(), {"SELECT", std::to_string(url.db)}); !r.ok()) {
      return r.status();
    }
  }
  return c;
}

// Bytes of a bulk string in RESP: $<len>\r\n<bytes>\r\n.
size_t BulkBytes(size_t len) { return 1 + std::to_string(len).size() + 2 + len + 2; }

// Everything the connections share, fixed before their threads start but for the end (which a
// stop moves earlier) and `interrupted`.
struct RawRun {
  const EventGenerator* generator = nullptr;
  RedisUrl url;
  std::string stream;
  int batch = 1;
  // --mix seed (closed loop only): each round trip carries the events of the run's next seed-mix
  // request (1, 5..20 or 100..500 XADDs), so the limit sees the request sizes Sluice gets.
  RequestSequencer* sequencer = nullptr;
  bool open_loop = false;
  SteadyClock::duration interval{};  // open loop: between one connection's slots
  SteadyClock::duration connect_timeout{};
  SteadyClock::time_point measure_start;
  std::atomic<uint64_t> next_seq{0};
  std::atomic<SteadyClock::rep> end_ticks{0};

  // Wakes connections waiting for a slot or a reconnect when the end moves.
  std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool interrupted = false;  // under wake_mu

  SteadyClock::time_point End() const {
    return SteadyClock::time_point(SteadyClock::duration(end_ticks.load()));
  }
  void SetEnd(SteadyClock::time_point t) { end_ticks.store(t.time_since_epoch().count()); }
  void Interrupt() {
    {
      std::lock_guard lock(wake_mu);
      interrupted = true;
    }
    wake_cv.notify_all();
  }
  // Sleeps until `t` or an Interrupt(), whichever comes first.
  void SleepUntil(SteadyClock::time_point t) {
    std::unique_lock lock(wake_mu);
    wake_cv.wait_until(lock, t, [this] { return interrupted; });
  }
};

// One Redis connection and the thread that drives it. Run() and the stats belong to that
// thread; Abort() may be called from any thread.
class RawConnection {
 public:
  explicit RawConnection(RawRun& run) : run_(run) {}

  // Connects before the clock starts, so that the first batches do not pay for it. On failure
  // the connection reconnects when it first sends.
  void PreConnect() { (void)TryConnect(); }

  // Open loop: when this connection's first batch is due.
  void SetFirstSlot(SteadyClock::time_point t) { next_slot_ = t; }

  void Run() {
    while (!aborted_.load()) {
      const auto now = SteadyClock::now();
      const auto end = run_.End();
      if (!run_.open_loop) {
        if (now >= end) break;
      } else {
        if (next_slot_ >= end) break;
        if (now >= end) {
          const uint64_t missed =
              internal::MissedSlots(next_slot_, run_.measure_start, end, run_.interval);
          stats.requests_missed += missed;
          stats.events_missed += missed * static_cast<uint64_t>(run_.batch);
          break;
        }
        if (next_slot_ > now) {
          run_.SleepUntil(next_slot_);
          continue;
        }
      }
      if (conn_ == nullptr) {
        ConnectOrBackOff();
        continue;
      }
      RoundTrip();
      next_slot_ += run_.interval;  // the slot was used, successfully or not
    }
    Drop();
  }

  // Cuts off a batch in flight (its wait for replies fails at once) and ends Run() soon.
  void Abort() {
    std::lock_guard lock(conn_mu_);
    aborted_.store(true);
    if (conn_ != nullptr) ::shutdown(conn_->fd, SHUT_RDWR);
  }

  WorkerStats stats;  // read after the thread is joined

 private:
  bool Measuring(SteadyClock::time_point t) const { return t >= run_.measure_start; }

  Status TryConnect() {
    auto c = Connect(run_.url, run_.connect_timeout, kRequestTimeout);
    if (!c.ok()) return c.status();
    std::lock_guard lock(conn_mu_);
    if (aborted_.load()) return Status::Unavailable("aborted");
    conn_ = std::move(*c);
    ++stats.connects;
    backoff_ = kMinBackoff;
    return Status::OK();
  }

  void ConnectOrBackOff() {
    Status s = TryConnect();
    if (s.ok()) return;
    const auto now = SteadyClock::now();
    const auto end = run_.End();
    // Not a request: the slot (open loop) stays pending and goes out late once connected. A
    // connect abandoned at the end is no error.
    if (Measuring(now) && now < end) ++stats.connection_errors["connect: " + s.message()];
    if (now >= end) return;
    run_.SleepUntil(std::min(now + backoff_, end));
    backoff_ = std::min(backoff_ * 2, SteadyClock::duration(kMaxBackoff));
  }

  void Drop() {
    std::lock_guard lock(conn_mu_);
    conn_.reset();
  }

  // One batch: `batch` XADDs (or the next seed-mix request's events) appended, written
  // together, then their replies read.
  void RoundTrip() {
    int n = run_.batch;
    uint64_t seq = 0;
    if (run_.sequencer != nullptr) {
      const RequestSequencer::Next next = run_.sequencer->Take();
      n = next.shape.events;
      seq = next.first_seq;
    } else {
      seq = run_.next_seq.fetch_add(static_cast<uint64_t>(n));
    }
    const auto now = SteadyClock::now();
    const auto sched = run_.open_loop ? next_slot_ : now;
    const int64_t wall =
        duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    char ts[kTimestampLength];
    FormatTimestamp(wall, ts);
    events_.clear();
    ends_.clear();
    for (int i = 0; i < n; ++i) {
      run_.generator->AppendEvent(seq + static_cast<uint64_t>(i),
                                  std::string_view(ts, kTimestampLength), &events_);
      ends_.push_back(events_.size());
    }
    const size_t command_overhead =
        4 /* *5\r\n */ + BulkBytes(4) + BulkBytes(run_.stream.size()) + BulkBytes(1) + BulkBytes(1);
    size_t wire_bytes = 0;
    size_t begin = 0;
    bool appended = true;
    for (int i = 0; i < n && appended; ++i) {
      const size_t len = ends_[static_cast<size_t>(i)] - begin;
      const char* argv[5] = {"XADD", run_.stream.c_str(), "*", "r", events_.data() + begin};
      const size_t lens[5] = {4, run_.stream.size(), 1, 1, len};
      appended = redisAppendCommandArgv(conn_.get(), 5, argv, lens) == REDIS_OK;
      wire_bytes += command_overhead + BulkBytes(len);
      begin = ends_[static_cast<size_t>(i)];
    }
    const bool counted = Measuring(sched);
    if (counted) {
      ++stats.requests_sent;
      stats.events_sent += static_cast<uint64_t>(n);
      stats.body_bytes_sent += wire_bytes;
    }
    if (!appended) return Fail(counted, "XADD: " + ContextError(conn_.get()));

    // Replies come in command order: reply i is event i's.
    uint64_t acked = 0, acked_bytes = 0;
    begin = 0;
    for (int i = 0; i < n; ++i) {
      void* raw = nullptr;
      if (redisGetReply(conn_.get(), &raw) != REDIS_OK || raw == nullptr) {
        if (counted) {
          stats.events_acked += acked;
          stats.acked_json_bytes += acked_bytes;
        }
        return Fail(counted, aborted_.load() ? "no answer within the drain time after the end"
                                             : "XADD: " + ContextError(conn_.get()));
      }
      const ReplyPtr reply(static_cast<redisReply*>(raw));
      const size_t end = ends_[static_cast<size_t>(i)];
      if (reply->type == REDIS_REPLY_STRING) {
        ++acked;
        acked_bytes += end - begin;
      } else if (counted) {
        ++stats.reply_errors[reply->type == REDIS_REPLY_ERROR
                                 ? "XADD: " + std::string(reply->str, reply->len)
                                 : "XADD: unexpected reply type " + std::to_string(reply->type)];
      }
      begin = end;
    }
    if (counted) {
      const auto done = SteadyClock::now();
      ++stats.requests_answered;
      stats.events_acked += acked;
      stats.acked_json_bytes += acked_bytes;
      stats.latency.Record(duration_cast<microseconds>(done - sched).count());
      stats.last_answer = std::max(stats.last_answer, done);
    }
  }

  // The connection failed during a batch: counted, dropped; the next send reconnects.
  void Fail(bool counted, const std::string& message) {
    if (counted) {
      ++stats.connection_errors[message];
      stats.last_answer = std::max(stats.last_answer, SteadyClock::now());
    }
    Drop();
  }

  RawRun& run_;
  std::mutex conn_mu_;  // held where conn_ changes and in Abort; Run() reads conn_ without it
  RedisContextPtr conn_;
  std::atomic<bool> aborted_{false};
  SteadyClock::time_point next_slot_;  // open loop: the next batch's scheduled send time
  SteadyClock::duration backoff_ = kMinBackoff;
  std::string events_;        // the batch's event JSON, back to back
  std::vector<size_t> ends_;  // where each event of events_ ends
};

// XLEN and then (unless keep) DEL of the stream, on a connection of its own.
void CleanUp(const RedisUrl& url, const BenchOptions& options, BenchReport* report) {
  auto c = Connect(url, Seconds(options.connect_timeout_s), kCleanupTimeout);
  if (!c.ok()) {
    report->stream_error = c.status().message();
    return;
  }
  auto len = Command(c->get(), {"XLEN", options.raw_xadd_stream});
  if (!len.ok()) {
    report->stream_error = len.status().message();
    return;
  }
  if ((*len)->type == REDIS_REPLY_INTEGER) {
    report->stream_entries = static_cast<uint64_t>(std::max<long long>((*len)->integer, 0));
  }
  if (options.raw_xadd_keep) return;
  auto del = Command(c->get(), {"DEL", options.raw_xadd_stream});
  if (!del.ok()) {
    report->stream_error = del.status().message();
    return;
  }
  report->stream_deleted = true;
}

}  // namespace

std::string RedisUrlForDisplay(const std::string& url) {
  const size_t at = url.rfind('@');
  constexpr std::string_view kScheme = "redis://";
  if (at == std::string::npos || url.compare(0, kScheme.size(), kScheme) != 0) return url;
  const size_t colon = url.find(':', kScheme.size());
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Status ValidateRawXaddOptions(const BenchOptions& options) {
  SLUICE_RETURN_IF_ERROR(internal::CheckOptions(options));
  auto bad = [](const std::string& s) { return Status::InvalidArgument(s); };
  if (options.endpoint != "batch") {
    return bad("--raw-xadd sends batches of XADDs: --endpoint does not apply (got '" +
               options.endpoint + "')");
  }
  if (options.mix == "seed" && options.rate > 0) {
    return bad("--raw-xadd --mix seed runs closed loop only (it measures a limit): drop --rate");
  }
  if (options.record_acked) {
    return bad("--raw-xadd has no HTTP acknowledgements: drop --acked-out");
  }
  if (options.record_series) return bad("--raw-xadd does not record --series-out");
  if (options.gzip) return bad("--raw-xadd sends the events' JSON as they are: drop --gzip");
  if (options.probe_interval_s > 0) {
    return bad("--raw-xadd has no server to query: drop --probe-interval");
  }
  if (options.raw_xadd_stream.empty()) return bad("--raw-xadd-stream must not be empty");
  if (auto url = buffer::ParseRedisUrl(options.raw_xadd_url); !url.ok()) {
    return bad("--raw-xadd: " + url.status().message());
  }
  return Status::OK();
}

Result<BenchReport> RunRawXadd(const BenchOptions& options, std::stop_token stop) {
  SLUICE_RETURN_IF_ERROR(ValidateRawXaddOptions(options));
  SLUICE_ASSIGN_OR_RETURN(const RedisUrl url, buffer::ParseRedisUrl(options.raw_xadd_url));
  {
    // Tells "Redis down" (or a wrong password) from "Redis slow" before the run.
    auto probe = Connect(url, Seconds(options.connect_timeout_s), kRequestTimeout);
    if (!probe.ok()) return probe.status();
  }

  BenchReport report;
  report.raw_xadd = true;
  report.url = RedisUrlForDisplay(options.raw_xadd_url);
  report.endpoint = "raw-xadd";
  report.stream = options.raw_xadd_stream;
  report.seed = options.seed;
  report.mix = options.mix;
  report.id_prefix = options.id_prefix.empty() ? internal::FreshIdPrefix() : options.id_prefix;

  const EventGenerator generator(
      internal::GeneratorOptionsFor(options, report.id_prefix, EventMix::kWebShop));
  RawRun run;
  run.generator = &generator;
  run.url = url;
  run.stream = options.raw_xadd_stream;
  run.batch = options.batch;
  RequestSequencer sequencer(RequestMix::Seed(options.seed));
  if (options.mix == "seed") run.sequencer = &sequencer;
  run.connect_timeout = Seconds(options.connect_timeout_s);
  run.open_loop = options.rate > 0;
  if (run.open_loop) {
    run.interval = internal::OpenLoopInterval(options.rate, options.connections, run.batch);
  }

  std::vector<std::unique_ptr<RawConnection>> connections;
  connections.reserve(static_cast<size_t>(options.connections));
  for (int i = 0; i < options.connections; ++i) {
    connections.push_back(std::make_unique<RawConnection>(run));
    connections.back()->PreConnect();
  }
  const auto start = SteadyClock::now();
  for (int i = 0; i < options.connections; ++i) {
    // Open loop: connection i's slots are staggered by interval/connections.
    connections[static_cast<size_t>(i)]->SetFirstSlot(start +
                                                      run.interval * i / options.connections);
  }
  run.measure_start = start + Seconds(options.warmup_s);
  const SteadyClock::time_point planned_end = run.measure_start + Seconds(options.duration_s);
  run.SetEnd(planned_end);

  {
    std::mutex done_mu;
    std::condition_variable done_cv;
    size_t running = connections.size();
    std::vector<std::jthread> threads;
    threads.reserve(connections.size());
    for (auto& c : connections) {
      threads.emplace_back([&c, &done_mu, &done_cv, &running] {
        c->Run();
        std::lock_guard lock(done_mu);
        if (--running == 0) done_cv.notify_all();
      });
    }
    // Without a stop the run ends at planned_end; with one, at the stop, and connections
    // waiting for a slot or a reconnect finish at once. Either way batches in flight get the
    // drain time, then are cut off.
    const bool stopped = internal::StoppedBefore(stop, planned_end);
    const auto stop_time = SteadyClock::now();
    if (stopped && stop_time < planned_end) {
      report.stopped_early = true;
      run.SetEnd(stop_time);
      run.Interrupt();
    }
    std::unique_lock lock(done_mu);
    if (!done_cv.wait_until(lock,
                            std::min(stop_time, planned_end) + Seconds(options.drain_timeout_s),
                            [&] { return running == 0; })) {
      for (auto& c : connections) c->Abort();
    }
  }

  LatencyHistogram latency;
  const SteadyClock::time_point end = run.End();
  SteadyClock::time_point last_answer = end;
  for (auto& c : connections) {
    internal::AddWorkerStats(c->stats, &report, &latency, &last_answer);
  }
  CleanUp(url, options, &report);

  report.method_and_path =
      "XADD " + options.raw_xadd_stream + " * r <event JSON>, " +
      (run.sequencer != nullptr ? std::string("a seed-mix request's events (1, 5-20 or 100-500)")
                                : std::to_string(run.batch)) +
      " pipelined per round trip";
  report.connections = options.connections;
  report.threads = options.connections;
  report.batch = run.sequencer != nullptr ? 0 : run.batch;
  report.target_rate = options.rate;
  report.open_loop = run.open_loop;
  report.gzip = false;
  report.unique_ids = true;  // one counter for the whole run, a fresh id prefix per run
  report.mean_event_bytes = generator.MeanEventBytes();
  report.warmup_s = options.warmup_s;
  report.planned_duration_s = options.duration_s;
  report.duration_s = std::max(0.0, std::chrono::duration<double>(end - run.measure_start).count());
  report.elapsed_s =
      std::max(0.0, std::chrono::duration<double>(last_answer - run.measure_start).count());
  internal::Summarize(latency, &report);
  return report;
}

}  // namespace sluice::bench
