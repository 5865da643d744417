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
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "bench/event_generator.h"
#include "bench/histogram.h"
#include "bench/raw_xadd.h"
#include "bench/request_mix.h"
#include "bench/run_common.h"
#include "bench/run_log.h"

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

// Where one kind of request goes and how its body is made.
struct Route {
  const EventGenerator* generator = nullptr;
  BodyFormat format = BodyFormat::kBatch;
  std::string target;  // "/v1/batch", with the URL's path prefix
  std::string content_type;
  std::string kind_name;  // for requests_by_kind
};

// Everything the connections share, fixed before the threads start.
struct RunPlan {
  // Mix fixed: one route; mix seed: kTrack -> routes[0], the batch kinds -> routes[1].
  std::vector<Route> routes;
  bool seed_mix = false;
  double mean_events = 1;  // per request
  bool gzip = false;
  std::string host_header;
  std::string authorization;  // empty: none
  tcp::resolver::results_type endpoints;
  bool open_loop = false;
  // Open loop, mix fixed: between one connection's slots.
  SteadyClock::duration interval{};
  // Open loop, mix seed: 1 / rate. Request k is due at start + its first_seq / rate, one
  // schedule for the whole run, served by whichever connection is free (RunPlan::SlotOf).
  double seconds_per_event = 0;
  SteadyClock::time_point start, measure_start;
  // Without a stop: the latest moment a request may still be answered (end + drain timeout).
  SteadyClock::time_point abort_at;
  RequestSequencer* sequencer = nullptr;
  bool record_acked = false, record_series = false;
  // End of the measurement: measure_start + duration, moved earlier by a stop request. Set by
  // RunBench's thread; the event loops read it.
  std::atomic<SteadyClock::rep> end_ticks{0};

  SteadyClock::time_point End() const {
    return SteadyClock::time_point(SteadyClock::duration(end_ticks.load()));
  }
  const Route& RouteFor(RequestKind kind) const {
    return routes[seed_mix && kind != RequestKind::kTrack ? 1 : 0];
  }
  // Open loop, mix seed: when request `r` is due — when the events before it have been
  // offered at the rate — so the offered events follow the rate, whatever the draws.
  SteadyClock::time_point SlotOf(const RequestSequencer::Next& r) const {
    return start + std::chrono::ceil<SteadyClock::duration>(std::chrono::duration<double>(
                       seconds_per_event * static_cast<double>(r.first_seq)));
  }
  // Seconds since the start of the measurement, for the series.
  double SinceMeasureStart(SteadyClock::time_point t) const {
    return std::chrono::duration<double>(t - measure_start).count();
  }
  void SetEnd(SteadyClock::time_point t) { end_ticks.store(t.time_since_epoch().count()); }
};

// One keep-alive connection with at most one request in flight. Lives on one io_context;
// pending handlers hold it alive through shared_from_this.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& ioc, const RunPlan& plan, WorkerStats& stats)
      : plan_(plan), stats_(stats), stream_(ioc), timer_(ioc) {
    for (const Route& route : plan.routes) {
      bodies_.push_back(std::make_unique<BodyBuilder>(*route.generator, route.format, plan.gzip));
    }
    req_.method(http::verb::post);
    req_.version(11);
    req_.keep_alive(true);
    req_.set(http::field::host, plan.host_header);
    req_.set(http::field::user_agent, "sluice-bench/0.1");
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
    if (plan_.seed_mix && !pending_) {
      // The next request of the run's schedule; this connection sends it at its slot.
      pending_ = plan_.sequencer->Take();
      next_slot_ = plan_.SlotOf(*pending_);
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
    const RequestSequencer::Next next = pending_ ? *pending_ : plan_.sequencer->Take();
    pending_.reset();
    const Route& route = plan_.RouteFor(next.shape.kind);
    const size_t route_index = &route - plan_.routes.data();
    const int64_t wall =
        duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const BodyBuilder::Built built =
        bodies_[route_index]->Build(next.first_seq, next.shape.events, wall, &req_.body());
    req_.target(route.target);
    req_.set(http::field::content_type, route.content_type);
    req_.prepare_payload();
    in_flight_first_seq_ = next.first_seq;
    in_flight_events_ = built.events;
    in_flight_event_bytes_ = built.event_bytes;
    counted_ = Measuring(sched_);
    if (counted_) {
      ++stats_.requests_sent;
      ++stats_.requests_by_kind[plan_.seed_mix ? std::string(RequestKindName(next.shape.kind))
                                               : route.kind_name];
      stats_.events_sent += built.events;
      stats_.body_bytes_sent += req_.body().size();
      if (plan_.record_series) {
        stats_.series.Offered(plan_.SinceMeasureStart(sched_), built.events);
      }
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
    const int status = static_cast<int>(res_.result_int());
    const size_t acked =
        status >= 200 && status < 300 ? AckedEvents(res_.body(), in_flight_events_) : 0;
    // The acked CSV covers the warmup too: those events are stored like any others.
    if (plan_.record_acked && status == 200 && acked == in_flight_events_ && acked > 0) {
      stats_.acked.push_back({in_flight_first_seq_, in_flight_events_});
    }
    if (counted_) {
      ++stats_.requests_answered;
      ++stats_.status_counts[status];
      const int64_t latency_us = duration_cast<microseconds>(now - sched_).count();
      stats_.latency.Record(latency_us);
      stats_.last_answer = std::max(stats_.last_answer, now);
      if (status != 200) ++stats_.errors_by_status[std::to_string(status)];
      if (status >= 200 && status < 300) {
        stats_.events_acked += acked;
        stats_.events_rejected += in_flight_events_ - acked;
        if (in_flight_events_ > 0) {
          stats_.acked_json_bytes += in_flight_event_bytes_ * acked / in_flight_events_;
        }
      }
      if (plan_.record_series) {
        const double t = plan_.SinceMeasureStart(now);
        if (status != 200) stats_.series.Error(t);
        if (acked > 0) stats_.series.Acked(t, acked, latency_us);
      }
    }
    if (!res_.keep_alive()) Close();
    if (!plan_.seed_mix) next_slot_ += plan_.interval;
    Next();
  }

  void Fail(std::string_view what, beast::error_code ec) {
    const auto now = SteadyClock::now();
    in_flight_ = false;
    if (counted_) {
      ++stats_.connection_errors[aborted_
                                     ? std::string("no answer within the drain time after a stop")
                                     : std::string(what) + ": " + ec.message()];
      // Cut by the client: the request timeout, the drain time's end, or Abort().
      const bool timeout = aborted_ || ec == beast::error::timeout;
      ++stats_.errors_by_status[timeout ? "timeout" : "network"];
      if (plan_.record_series) stats_.series.Error(plan_.SinceMeasureStart(now));
      stats_.last_answer = std::max(stats_.last_answer, now);
    }
    Close();
    if (!plan_.seed_mix) next_slot_ += plan_.interval;  // the slot was used, unsuccessfully
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
    if (plan_.seed_mix) {
      // The request this connection holds; those nobody took RunBench counts.
      if (pending_ && Measuring(next_slot_) && next_slot_ < plan_.End()) {
        ++stats_.requests_missed;
        stats_.events_missed += static_cast<uint64_t>(pending_->shape.events);
      }
      return;
    }
    const uint64_t missed =
        internal::MissedSlots(next_slot_, plan_.measure_start, plan_.End(), plan_.interval);
    stats_.requests_missed += missed;
    stats_.events_missed += missed * static_cast<uint64_t>(plan_.mean_events);  // the batch
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
  std::vector<std::unique_ptr<BodyBuilder>> bodies_;  // one per plan_.routes entry
  bool connected_ = false;
  bool connecting_ = false;  // an async_connect is pending
  bool in_flight_ = false;   // a request was written (or is being written), not yet answered
  bool aborted_ = false;     // Abort() was called: finish, whatever happens
  bool counted_ = false;     // the request in flight belongs to the measurement
  uint64_t in_flight_first_seq_ = 0;
  size_t in_flight_events_ = 0;
  size_t in_flight_event_bytes_ = 0;
  SteadyClock::time_point next_slot_;  // open loop: the next request's scheduled send time
  // Open loop, mix seed: the request taken from the schedule, waiting for next_slot_.
  std::optional<RequestSequencer::Next> pending_;
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
  report.mix = options.mix;
  report.seed = options.seed;
  report.id_prefix = options.id_prefix.empty() ? internal::FreshIdPrefix() : options.id_prefix;
  plan.seed_mix = options.mix == "seed";
  const bool track = !plan.seed_mix && options.endpoint == "track";
  const int batch = track ? 1 : options.batch;
  report.endpoint = plan.seed_mix ? "seed" : options.endpoint;
  plan.gzip = options.gzip;
  plan.host_header = url.authority;
  if (!options.write_key.empty()) {
    plan.authorization = "Basic " + Base64(options.write_key + ":");
  }
  plan.record_acked = options.record_acked;
  plan.record_series = options.record_series;

  // Mix seed: the single events come from a track-only generator (/v1/track takes tracks), the
  // batches from the web-shop one, both from the same seed and id prefix.
  auto make_generator = [&](EventMix mix) {
    EventGeneratorOptions g = internal::GeneratorOptionsFor(options, report.id_prefix, mix);
    g.precompress = options.gzip;
    return std::make_unique<const EventGenerator>(g);
  };
  std::vector<std::unique_ptr<const EventGenerator>> generators;
  auto add_route = [&](EventMix mix, BodyFormat format, const std::string& endpoint) {
    generators.push_back(make_generator(mix));
    plan.routes.push_back(
        Route{generators.back().get(), format, url.prefix + "/v1/" + endpoint,
              format == BodyFormat::kNdjson ? "application/x-ndjson" : "application/json",
              endpoint});
  };
  const RequestMix mix = plan.seed_mix ? RequestMix::Seed(options.seed) : RequestMix::Fixed(batch);
  if (plan.seed_mix) {
    // With --endpoint noop the same bodies go to the no-op handler (the HTTP stack's limit).
    const bool noop = options.endpoint == "noop";
    add_route(EventMix::kTrackOnly, BodyFormat::kSingle, noop ? "noop" : "track");
    add_route(EventMix::kWebShop, BodyFormat::kBatch, noop ? "noop" : "batch");
  } else {
    add_route(track ? EventMix::kTrackOnly : EventMix::kWebShop,
              track                          ? BodyFormat::kSingle
              : options.endpoint == "events" ? BodyFormat::kNdjson
                                             : BodyFormat::kBatch,
              options.endpoint);
  }
  plan.mean_events = mix.MeanEvents();
  RequestSequencer sequencer(mix);
  plan.sequencer = &sequencer;

  const int threads = std::min(options.threads, options.connections);
  plan.open_loop = options.rate > 0;
  if (plan.open_loop) {
    plan.interval = internal::OpenLoopInterval(options.rate, options.connections, batch);
    plan.seconds_per_event = 1.0 / options.rate;
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
        report.id_prefix, options.probe_engine, options.probe_lookback_s});
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
  if (plan.open_loop && plan.seed_mix) {
    // Requests of the schedule due in the measured time that no connection was free to take,
    // one by one up to a bound, then (a server gone for most of a very fast run) estimated from
    // the events still owed and the mean request.
    constexpr uint64_t kMaxCounted = 10'000'000;
    for (uint64_t counted = 0;; ++counted) {
      const RequestSequencer::Next r = sequencer.Take();
      const auto due = plan.SlotOf(r);
      if (due >= end) break;
      if (counted == kMaxCounted) {
        const double owed = std::chrono::duration<double>(end - due).count() * options.rate;
        report.events_missed += static_cast<uint64_t>(owed);
        report.requests_missed += static_cast<uint64_t>(std::ceil(owed / plan.mean_events));
        break;
      }
      if (due < plan.measure_start) continue;
      ++report.requests_missed;
      report.events_missed += static_cast<uint64_t>(r.shape.events);
    }
  }

  report.method_and_path = plan.seed_mix
                               ? "POST " + plan.routes[0].target + " + " + plan.routes[1].target
                               : "POST " + plan.routes[0].target;
  report.connections = options.connections;
  report.threads = threads;
  report.batch = plan.seed_mix ? 0 : batch;
  report.target_rate = options.rate;
  report.open_loop = plan.open_loop;
  report.gzip = options.gzip;
  report.unique_ids = true;  // one counter for the whole run, a fresh id prefix per run
  // Mix seed: both generators aim at the same size; the batch one carries most events.
  report.mean_event_bytes = plan.routes.back().generator->MeanEventBytes();
  report.warmup_s = options.warmup_s;
  report.planned_duration_s = options.duration_s;
  // A stop during the warmup leaves nothing measured.
  report.duration_s =
      std::max(0.0, std::chrono::duration<double>(end - plan.measure_start).count());
  report.elapsed_s =
      std::max(0.0, std::chrono::duration<double>(last_answer - plan.measure_start).count());

  if (options.record_series) {
    SecondSeries series;
    for (auto& w : workers) series.Merge(w->stats.series);
    // A measured 5.0 s is rows 0..4, a stop at 3.2 s rows 0..3.
    report.series = series.Rows(static_cast<uint64_t>(std::ceil(report.duration_s - 1e-6)));
  }
  internal::Summarize(latency, &report);
  return report;
}

}  // namespace sluice::bench
