#include "bench/load_generator.h"

#include "bench/freshness_probe.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "bench/event_generator.h"
#include "bench/histogram.h"
#include "bench/raw_xadd.h"
#include "bench/run_common.h"

namespace sluice::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using internal::Seconds;
using internal::SteadyClock;
using internal::WorkerStats;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

// A request that has not been answered after this long counts as a timeout.
constexpr auto kRequestTimeout = std::chrono::seconds(60);
constexpr auto kMinBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);

struct ParsedUrl {
  std::string host;  // without brackets
  std::string port;
  std::string authority;  // for the Host header
  std::string prefix;     // path before /v1/…, no trailing slash
};

Result<ParsedUrl> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status::InvalidArgument("--url: https is not supported; point bench at http://");
  }
  if (url.rfind(kScheme, 0) != 0) {
    return Status::InvalidArgument("--url must look like http://HOST[:PORT] (got '" + url + "')");
  }
  ParsedUrl out;
  std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    out.prefix = rest.substr(slash);
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
    rest.resize(slash);
  }
  out.authority = rest;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) {
      return Status::InvalidArgument("--url has an unclosed '[' (got '" + url + "')");
    }
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') out.port = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) out.port = rest.substr(colon + 1);
  }
  if (out.port.empty()) out.port = "80";
  if (out.host.empty() ||
      !std::all_of(out.port.begin(), out.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument("--url must look like http://HOST[:PORT] (got '" + url + "')");
  }
  return out;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Skips JSON whitespace from `pos`.
size_t SkipSpace(std::string_view s, size_t pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) {
    ++pos;
  }
  return pos;
}

// How many of `events` a 2xx answer acknowledges: 0 unless it says "success":true; then its
// "accepted" count when it gives one, else all of them. A scan, not a parse: the body is ours.
size_t AckedEvents(std::string_view body, size_t events) {
  auto value_of = [&](std::string_view key) -> std::string_view {
    const size_t at = body.find(key);
    if (at == std::string_view::npos) return {};
    size_t pos = SkipSpace(body, at + key.size());
    if (pos >= body.size() || body[pos] != ':') return {};
    pos = SkipSpace(body, pos + 1);
    return body.substr(pos);
  };
  if (value_of("\"success\"").substr(0, 4) != "true") return 0;
  const std::string_view accepted = value_of("\"accepted\"");
  if (accepted.empty() || accepted[0] < '0' || accepted[0] > '9') return events;
  size_t n = 0;
  for (char c : accepted) {
    if (c < '0' || c > '9') break;
    n = n * 10 + static_cast<size_t>(c - '0');
    if (n > events) break;
  }
  return std::min(n, events);
}

// Everything the connections share, fixed before the threads start.
struct RunPlan {
  const EventGenerator* generator = nullptr;
  BodyFormat format = BodyFormat::kBatch;
  int batch = 1;
  bool gzip = false;
  std::string target;
  std::string host_header;
  std::string authorization;  // empty: none
  std::string content_type;
  tcp::resolver::results_type endpoints;
  bool open_loop = false;
  SteadyClock::duration interval{};  // open loop: between one connection's slots
  SteadyClock::time_point start, measure_start;
  // Without a stop: the latest moment a request may still be answered (end + drain timeout).
  SteadyClock::time_point abort_at;
  std::atomic<uint64_t>* next_seq = nullptr;
  // End of the measurement: measure_start + duration, moved earlier by a stop request. Set by
  // RunBench's thread; the event loops read it.
  std::atomic<SteadyClock::rep> end_ticks{0};

  SteadyClock::time_point End() const {
    return SteadyClock::time_point(SteadyClock::duration(end_ticks.load()));
  }
  void SetEnd(SteadyClock::time_point t) { end_ticks.store(t.time_since_epoch().count()); }
};

// One keep-alive connection with at most one request in flight. Lives on one io_context;
// pending handlers hold it alive through shared_from_this.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& ioc, const RunPlan& plan, WorkerStats& stats)
      : plan_(plan),
        stats_(stats),
        stream_(ioc),
        timer_(ioc),
        body_(*plan.generator, plan.format, plan.gzip) {
    req_.method(http::verb::post);
    req_.target(plan.target);
    req_.version(11);
    req_.keep_alive(true);
    req_.set(http::field::host, plan.host_header);
    req_.set(http::field::user_agent, "sluice-bench/0.1");
    req_.set(http::field::content_type, plan.content_type);
    if (plan.gzip) req_.set(http::field::content_encoding, "gzip");
    if (!plan.authorization.empty()) req_.set(http::field::authorization, plan.authorization);
  }

  // Connects before the clock starts, so the first requests do not pay for it. On failure the
  // connection simply reconnects when it first sends.
  void PreConnect() {
    beast::error_code ec;
    asio::connect(stream_.socket(), plan_.endpoints, ec);
    if (ec) {
      Close();
      return;
    }
    Connected();
  }

  // Open loop: when this connection's first request is due.
  void SetFirstSlot(SteadyClock::time_point t) { next_slot_ = t; }
  void Start() { Next(); }

  // After the run's end moved earlier (a stop): a connection waiting for its next slot or a
  // reconnect, or connecting, finishes now. A request in flight is left to be answered.
  void Interrupt() {
    if (in_flight_) return;
    timer_.cancel();
    if (connecting_) stream_.cancel();
  }

  // The drain time after a stop is over: a request still in flight is cut off (counted as a
  // connection error) and the connection finishes.
  void Abort() {
    aborted_ = true;
    timer_.cancel();
    Close();
  }

 private:
  bool Measuring(SteadyClock::time_point t) const { return t >= plan_.measure_start; }

  // The one place that decides what happens next: wait for a slot, send, or finish.
  void Next() {
    const auto now = SteadyClock::now();
    const auto end = plan_.End();
    if (aborted_) return Finish();
    if (!plan_.open_loop) {
      if (now >= end) return Finish();
      return Send();
    }
    if (next_slot_ >= end) return Finish();
    if (now >= end) {
      CountMissedSlots();
      return Finish();
    }
    if (next_slot_ > now) {
      timer_.expires_at(next_slot_);
      timer_.async_wait([self = shared_from_this()](beast::error_code) { self->Next(); });
      return;
    }
    Send();  // on time, or late: latency still runs from next_slot_
  }

  void Send() {
    if (!connected_) return Connect();
    const auto now = SteadyClock::now();
    sched_ = plan_.open_loop ? next_slot_ : now;
    const uint64_t seq = plan_.next_seq->fetch_add(static_cast<uint64_t>(plan_.batch));
    const int64_t wall =
        duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const BodyBuilder::Built built = body_.Build(seq, plan_.batch, wall, &req_.body());
    req_.prepare_payload();
    in_flight_events_ = built.events;
    in_flight_event_bytes_ = built.event_bytes;
    counted_ = Measuring(sched_);
    if (counted_) {
      ++stats_.requests_sent;
      stats_.events_sent += built.events;
      stats_.body_bytes_sent += req_.body().size();
    }
    stream_.expires_at(std::min(now + kRequestTimeout, plan_.abort_at));
    in_flight_ = true;
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return Fail("write", ec);
    res_ = {};
    http::async_read(
        stream_, buffer_, res_,
        [self = shared_from_this()](beast::error_code read_ec, size_t) { self->OnRead(read_ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail("read", ec);
    in_flight_ = false;
    const auto now = SteadyClock::now();
    if (counted_) {
      ++stats_.requests_answered;
      const int status = static_cast<int>(res_.result_int());
      ++stats_.status_counts[status];
      stats_.latency.Record(duration_cast<microseconds>(now - sched_).count());
      stats_.last_answer = std::max(stats_.last_answer, now);
      if (status >= 200 && status < 300) {
        const size_t acked = AckedEvents(res_.body(), in_flight_events_);
        stats_.events_acked += acked;
        stats_.events_rejected += in_flight_events_ - acked;
        if (in_flight_events_ > 0) {
          stats_.acked_json_bytes += in_flight_event_bytes_ * acked / in_flight_events_;
        }
      }
    }
    if (!res_.keep_alive()) Close();
    next_slot_ += plan_.interval;
    Next();
  }

  void Fail(std::string_view what, beast::error_code ec) {
    const auto now = SteadyClock::now();
    in_flight_ = false;
    if (counted_) {
      ++stats_.connection_errors[aborted_
                                     ? std::string("no answer within the drain time after a stop")
                                     : std::string(what) + ": " + ec.message()];
      stats_.last_answer = std::max(stats_.last_answer, now);
    }
    Close();
    next_slot_ += plan_.interval;  // the slot was used, unsuccessfully
    Next();
  }

  void Connect() {
    const auto now = SteadyClock::now();
    stream_.expires_at(std::min(now + kRequestTimeout, plan_.End()));
    connecting_ = true;
    stream_.async_connect(plan_.endpoints,
                          [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                            self->OnConnect(ec);
                          });
  }

  void OnConnect(beast::error_code ec) {
    const auto now = SteadyClock::now();
    const auto end = plan_.End();
    connecting_ = false;
    if (!ec) {
      Connected();
      return Next();
    }
    // Not a request: the slot (open loop) stays pending and goes out late once connected. A
    // connect abandoned at the end is no error.
    if (Measuring(now) && now < end) ++stats_.connection_errors["connect: " + ec.message()];
    Close();
    if (now >= end) return Next();
    timer_.expires_at(std::min(now + backoff_, end));
    backoff_ = std::min(backoff_ * 2, SteadyClock::duration(kMaxBackoff));
    timer_.async_wait([self = shared_from_this()](beast::error_code) { self->Next(); });
  }

  void Connected() {
    connected_ = true;
    backoff_ = kMinBackoff;
    ++stats_.connects;
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    buffer_.clear();
    connected_ = false;
  }

  // Open loop, at the end: the slots in the measured window this connection never sent.
  void CountMissedSlots() {
    stats_.requests_missed +=
        internal::MissedSlots(next_slot_, plan_.measure_start, plan_.End(), plan_.interval);
  }

  void Finish() {
    timer_.cancel();
    Close();
  }

  const RunPlan& plan_;
  WorkerStats& stats_;
  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  BodyBuilder body_;
  bool connected_ = false;
  bool connecting_ = false;  // an async_connect is pending
  bool in_flight_ = false;   // a request was written (or is being written), not yet answered
  bool aborted_ = false;     // Abort() was called: finish, whatever happens
  bool counted_ = false;     // the request in flight belongs to the measurement
  size_t in_flight_events_ = 0;
  size_t in_flight_event_bytes_ = 0;
  SteadyClock::time_point next_slot_;  // open loop: the next request's scheduled send time
  SteadyClock::time_point sched_;      // the request in flight's latency origin
  SteadyClock::duration backoff_ = kMinBackoff;
};

struct Worker {
  WorkerStats stats;  // declared first: outlives the io_context and its pending handlers
  asio::io_context ioc{1};
  std::vector<std::shared_ptr<Connection>> connections;
};

// Connects once, with a timeout, to tell "server down" from "server slow" before the run.
Status CheckReachable(const tcp::resolver::results_type& endpoints, const std::string& url,
                      double timeout_s) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(Seconds(timeout_s));
  beast::error_code result = asio::error::would_block;
  stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) { result = ec; });
  ioc.run();
  if (result) {
    return Status::Unavailable("could not connect to " + url + ": " + result.message());
  }
  return Status::OK();
}

}  // namespace

Status ValidateBenchOptions(const BenchOptions& options) {
  if (!options.raw_xadd_url.empty()) return ValidateRawXaddOptions(options);
  SLUICE_RETURN_IF_ERROR(internal::CheckOptions(options));
  return ParseUrl(options.url).status();
}

Result<BenchReport> RunBench(const BenchOptions& options, std::stop_token stop) {
  if (!options.raw_xadd_url.empty()) return RunRawXadd(options, std::move(stop));
  SLUICE_RETURN_IF_ERROR(internal::CheckOptions(options));
  SLUICE_ASSIGN_OR_RETURN(const ParsedUrl url, ParseUrl(options.url));

  asio::io_context resolve_ioc;
  tcp::resolver resolver(resolve_ioc);
  beast::error_code ec;
  RunPlan plan;
  plan.endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec || plan.endpoints.empty()) {
    return Status::Unavailable("could not resolve " + url.host + ": " + ec.message());
  }
  SLUICE_RETURN_IF_ERROR(CheckReachable(plan.endpoints, options.url, options.connect_timeout_s));

  BenchReport report;
  report.url = options.url;
  report.endpoint = options.endpoint;
  report.seed = options.seed;
  report.run_id = options.run_id != 0 ? options.run_id : internal::FreshRunId();
  const bool track = options.endpoint == "track";
  plan.batch = track ? 1 : options.batch;
  plan.format = track                          ? BodyFormat::kSingle
                : options.endpoint == "events" ? BodyFormat::kNdjson
                                               : BodyFormat::kBatch;
  plan.gzip = options.gzip;
  plan.target = url.prefix + "/v1/" + options.endpoint;
  plan.host_header = url.authority;
  plan.content_type =
      plan.format == BodyFormat::kNdjson ? "application/x-ndjson" : "application/json";
  if (!options.write_key.empty()) {
    plan.authorization = "Basic " + Base64(options.write_key + ":");
  }

  EventGeneratorOptions gen_options = internal::GeneratorOptionsFor(
      options, report.run_id, track ? EventMix::kTrackOnly : EventMix::kWebShop);
  gen_options.precompress = options.gzip;
  const EventGenerator generator(gen_options);
  plan.generator = &generator;
  std::atomic<uint64_t> next_seq{0};
  plan.next_seq = &next_seq;

  const int threads = std::min(options.threads, options.connections);
  plan.open_loop = options.rate > 0;
  if (plan.open_loop) {
    plan.interval = internal::OpenLoopInterval(options.rate, options.connections, plan.batch);
  }

  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) workers.push_back(std::make_unique<Worker>());
  for (int i = 0; i < options.connections; ++i) {
    Worker& w = *workers[static_cast<size_t>(i % threads)];
    w.connections.push_back(std::make_shared<Connection>(w.ioc, plan, w.stats));
  }
  for (auto& w : workers) {
    for (auto& c : w->connections) c->PreConnect();
  }

  plan.start = SteadyClock::now();
  plan.measure_start = plan.start + Seconds(options.warmup_s);
  const SteadyClock::time_point planned_end = plan.measure_start + Seconds(options.duration_s);
  plan.SetEnd(planned_end);
  plan.abort_at = planned_end + Seconds(options.drain_timeout_s);
  for (int i = 0; i < options.connections; ++i) {
    Worker& w = *workers[static_cast<size_t>(i % threads)];
    auto& c = w.connections[static_cast<size_t>(i / threads)];
    // Open loop: connection i's slots are staggered by interval/connections.
    const auto offset = plan.interval * i / options.connections;
    c->SetFirstSlot(plan.start + offset);
    asio::post(w.ioc, [c] { c->Start(); });
  }
  std::unique_ptr<FreshnessProbe> probe;
  if (options.probe_interval_s > 0) {
    probe = std::make_unique<FreshnessProbe>(FreshnessOptions{
        options.url, options.probe_interval_s, 10.0, options.write_key, options.read_key,
        report.run_id});
  }
  {
    // Counts the event loops still running, so that a stopped run waits for them only as long
    // as the drain time.
    std::mutex loops_mu;
    std::condition_variable loops_done;
    size_t loops_running = workers.size();
    std::vector<std::jthread> running;
    running.reserve(workers.size());
    for (auto& w : workers) {
      running.emplace_back([&w, &loops_mu, &loops_done, &loops_running] {
        w->ioc.run();
        std::lock_guard lock(loops_mu);
        if (--loops_running == 0) loops_done.notify_all();
      });
    }
    bool stopped = false;
    if (probe) {
      stopped = internal::StoppedBefore(stop, plan.measure_start);
      if (!stopped) probe->Start();
    }
    if (!stopped) stopped = internal::StoppedBefore(stop, planned_end);
    if (probe) probe->Stop();
    const auto stop_time = SteadyClock::now();
    if (stopped && stop_time < planned_end) {
      report.stopped_early = true;
      plan.SetEnd(stop_time);
      for (auto& w : workers) {
        asio::post(w->ioc, [w = w.get()] {
          for (auto& c : w->connections) c->Interrupt();
        });
      }
      std::unique_lock lock(loops_mu);
      if (!loops_done.wait_until(lock, stop_time + Seconds(options.drain_timeout_s),
                                 [&] { return loops_running == 0; })) {
        for (auto& w : workers) {
          asio::post(w->ioc, [w = w.get()] {
            for (auto& c : w->connections) c->Abort();
          });
        }
      }
    }
  }
  if (probe) {
    FreshnessSummary f = probe->Summary();
    report.probed = true;
    report.probes = f.probes;
    report.probes_visible = f.visible;
    report.probes_timed_out = f.timed_out;
    report.probe_errors = f.errors;
    report.freshness_p50_ms = f.p50_ms;
    report.freshness_p99_ms = f.p99_ms;
    report.freshness_max_ms = f.max_ms;
  }
  for (auto& w : workers) w->connections.clear();

  LatencyHistogram latency;
  const SteadyClock::time_point end = plan.End();
  SteadyClock::time_point last_answer = end;
  for (auto& w : workers) internal::AddWorkerStats(w->stats, &report, &latency, &last_answer);

  report.method_and_path = "POST " + plan.target;
  report.connections = options.connections;
  report.threads = threads;
  report.batch = plan.batch;
  report.target_rate = options.rate;
  report.open_loop = plan.open_loop;
  report.gzip = options.gzip;
  report.unique_ids = true;  // one counter for the whole run, a fresh run_id per run
  report.mean_event_bytes = generator.MeanEventBytes();
  report.warmup_s = options.warmup_s;
  report.planned_duration_s = options.duration_s;
  // A stop during the warmup leaves nothing measured.
  report.duration_s =
      std::max(0.0, std::chrono::duration<double>(end - plan.measure_start).count());
  report.elapsed_s =
      std::max(0.0, std::chrono::duration<double>(last_answer - plan.measure_start).count());

  internal::Summarize(latency, plan.batch, &report);
  return report;
}

}  // namespace sluice::bench
