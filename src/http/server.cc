#include "http/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/clock.h"
#include "common/json_writer.h"
#include "common/metrics.h"
#include "http/compression.h"

namespace sluice::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::optional<std::string_view> Request::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return std::string_view(v);
  }
  return std::nullopt;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    if (UrlDecode(part.substr(0, eq)) == name) {
      return eq == std::string_view::npos ? std::string() : UrlDecode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

Response Response::Error(int status, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Key("success").Bool(false).Key("error").String(message).EndObject();
  return Response{status, w.Take(), "application/json", {}};
}

Response Response::Json(int status, std::string body) {
  return Response{status, std::move(body), "application/json", {}};
}

Status SplitHostPort(const std::string& listen, std::string* host, unsigned short* port) {
  auto bad = [&] {
    return Status::InvalidArgument("listen address \"" + listen +
                                   "\" is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, "
                                   "[::1]:8080)");
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) return bad();
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) return bad();
  unsigned long p = 0;
  for (char c : listen.substr(colon + 1)) {
    if (c < '0' || c > '9') return bad();
    p = p * 10 + static_cast<unsigned long>(c - '0');
    if (p > 65535) return bad();
  }
  *host = h;
  *port = static_cast<unsigned short>(p);
  return Status::OK();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

namespace {

// Counters and latency for one route, looked up once so the request path touches only atomics.
struct RouteMetrics {
  explicit RouteMetrics(std::string route) : name(std::move(route)) {
    auto& reg = metrics::Default();
    latency = &reg.GetHistogram("sluice_http_request_duration_seconds",
                                "Time from a request fully read to its response written",
                                {{"route", name}});
  }
  metrics::Counter& StatusCounter(int status) {
    size_t i = status >= 100 && status < 600 ? static_cast<size_t>(status - 100) : 0;
    metrics::Counter* c = by_status[i].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &metrics::Default().GetCounter("sluice_http_requests_total",
                                         "HTTP requests by route and status",
                                         {{"route", name}, {"status", std::to_string(status)}});
      by_status[i].store(c, std::memory_order_release);
    }
    return *c;
  }
  std::string name;
  metrics::Histogram* latency;
  std::array<std::atomic<metrics::Counter*>, 500> by_status{};
};

}  // namespace

class Session;

struct Server::Impl {
  explicit Impl(ServerOptions o) : opts(std::move(o)) {}

  ServerOptions opts;
  // path -> method -> handler; fixed after Start().
  std::map<std::string, std::map<std::string, Handler>, std::less<>> routes;
  std::map<std::string, std::unique_ptr<RouteMetrics>, std::less<>> route_metrics;
  std::unique_ptr<RouteMetrics> other_metrics = std::make_unique<RouteMetrics>("other");

  net::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::string local_address;
  std::atomic<size_t> in_flight{0};
  std::atomic<bool> stopping{false};

  std::mutex sessions_mu;
  // State below is protected by sessions_mu.
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  metrics::Counter& bytes_in = metrics::Default().GetCounter(
      "sluice_http_request_bytes_total", "Request body bytes received, as sent on the wire");
  metrics::Gauge& connections =
      metrics::Default().GetGauge("sluice_http_connections", "Open client connections");
  metrics::Counter& timeouts = metrics::Default().GetCounter(
      "sluice_http_read_timeouts_total", "Connections closed because a request arrived too slowly");

  RouteMetrics& MetricsFor(std::string_view path) {
    auto it = route_metrics.find(path);
    return it == route_metrics.end() ? *other_metrics : *it->second;
  }
  void DoAccept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl* impl) : stream_(std::move(socket)), impl_(impl) {
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
  }

  // Called (through post) by Server::Stop: closes the connection unless a request is being
  // handled, in which case it closes after the response is written.
  void CloseIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->Close();
    });
  }
  void ForceClose() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

 private:
  // Phase 1: wait, up to idle_timeout, for the first byte of the next request.
  void WaitForRequest() {
    if (closed_) return;
    if (impl_->stopping.load()) return Close();
    if (buffer_.size() > 0) return ReadRequest();
    stream_.expires_after(impl_->opts.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(8192), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->buffer_.commit(n);
          if (ec) return self->Close();
          self->ReadRequest();
        });
  }

  // Phase 2: the whole request must arrive within read_timeout.
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(impl_->opts.max_header_bytes));
    parser_->body_limit(impl_->opts.max_body_bytes);
    stream_.expires_after(impl_->opts.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted) return Close();
    if (ec == beast::error::timeout) {
      impl_->timeouts.Inc();
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      return SendError(413, "body is over max_body_bytes (" +
                                std::to_string(impl_->opts.max_body_bytes) + ")");
    }
    if (ec == bhttp::error::header_limit) {
      return SendError(431, "request header is over max_header_bytes (" +
                                std::to_string(impl_->opts.max_header_bytes) + ")");
    }
    if (ec) {
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
        return SendError(400, "malformed HTTP request: " + ec.message());
      }
      return Close();
    }
    stream_.expires_never();

    auto msg = parser_->release();
    Request req;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    size_t q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.headers.reserve(8);
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    req.remote = remote_;
    req.received_at_us = SystemClock()->NowMicros();
    keep_alive_ = msg.keep_alive();
    start_mono_ = SystemClock()->MonotonicMicros();
    route_ = &impl_->MetricsFor(req.path);

    std::string& raw = msg.body();
    req.wire_body_bytes = raw.size();
    impl_->bytes_in.Inc(raw.size());
    auto encoding = req.Header("content-encoding");
    if (encoding && !encoding->empty() && *encoding != "identity") {
      Status st = DecodeBody(*encoding, raw, impl_->opts.max_body_bytes, &req.body);
      if (!st.ok()) {
        int code = st.code() == StatusCode::kResourceExhausted   ? 413
                   : st.code() == StatusCode::kFailedPrecondition ? 415
                                                                  : 400;
        return Respond(Response::Error(code, st.message()));
      }
    } else {
      req.body = std::move(raw);
    }

    auto path_it = impl_->routes.find(req.path);
    if (path_it == impl_->routes.end()) {
      return Respond(Response::Error(404, "no such endpoint: " + req.path));
    }
    auto method_it = path_it->second.find(req.method);
    if (method_it == path_it->second.end()) {
      std::string allowed;
      for (const auto& [m, h] : path_it->second) allowed += (allowed.empty() ? "" : ", ") + m;
      Response r = Response::Error(405, req.method + " is not allowed on " + req.path +
                                            "; use " + allowed);
      r.headers.emplace_back("Allow", allowed);
      return Respond(std::move(r));
    }
    busy_ = true;
    impl_->in_flight.fetch_add(1);
    auto self = shared_from_this();
    method_it->second(req, [self](Response r) {
      net::post(self->stream_.get_executor(),
                [self, r = std::move(r)]() mutable { self->Write(std::move(r), true); });
    });
  }

  void SendError(int status, std::string message) {
    keep_alive_ = false;
    route_ = impl_->other_metrics.get();
    start_mono_ = SystemClock()->MonotonicMicros();
    Write(Response::Error(status, message), false);
  }

  void Respond(Response r) { Write(std::move(r), false); }

  // Writes `r`; `counted` says whether in_flight was incremented for this request.
  void Write(Response r, bool counted) {
    bool keep = keep_alive_ && !impl_->stopping.load() && r.status != 413 && r.status != 431;
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "sluice");
    res->set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep);
    res->prepare_payload();
    route_->StatusCounter(r.status).Inc();
    int64_t started = start_mono_;
    stream_.expires_after(impl_->opts.read_timeout);  // a client that never reads is cut off
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep, counted, started](
                           beast::error_code ec, size_t) {
                         self->route_->latency->Observe(
                             static_cast<double>(SystemClock()->MonotonicMicros() - started) /
                             1e6);
                         if (counted) {
                           self->busy_ = false;
                           self->impl_->in_flight.fetch_sub(1);
                         }
                         if (ec || !keep) return self->Close();
                         self->WaitForRequest();
                       });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    impl_->connections.Add(-1);
    std::lock_guard lock(impl_->sessions_mu);
    impl_->sessions.erase(this);
  }

  beast::tcp_stream stream_;
  Server::Impl* impl_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool closed_ = false;
  int64_t start_mono_ = 0;
  RouteMetrics* route_ = nullptr;
};

void Server::Impl::DoAccept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      spdlog::warn("accept failed: {}", ec.message());
    } else if (!stopping.load()) {
      auto session = std::make_shared<Session>(std::move(socket), this);
      connections.Add(1);
      {
        std::lock_guard lock(sessions_mu);
        sessions[session.get()] = session;
      }
      session->Start();
    }
    if (!stopping.load()) DoAccept();
  });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() { Stop(std::chrono::milliseconds(0)); }

void Server::Route(std::string method, std::string path, Handler handler) {
  if (!impl_->route_metrics.count(path)) {
    impl_->route_metrics.emplace(path, std::make_unique<RouteMetrics>(path));
  }
  impl_->routes[path][method] = std::move(handler);
}

Status Server::Start() {
  std::string host;
  unsigned short port = 0;
  SLUICE_RETURN_IF_ERROR(SplitHostPort(impl_->opts.listen, &host, &port));
  boost::system::error_code ec;
  net::ip::address addr;
  if (host == "localhost") {
    addr = net::ip::make_address("127.0.0.1");
  } else {
    addr = net::ip::make_address(host, ec);
    if (ec) {
      return Status::InvalidArgument("listen host \"" + host +
                                     "\" is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)");
    }
  }
  tcp::endpoint endpoint(addr, port);
  impl_->acceptor.emplace(impl_->ioc);
  auto& acc = *impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen on " + impl_->opts.listen + ": " + ec.message());
  }
  auto local = acc.local_endpoint();
  impl_->local_address = (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                                  : local.address().to_string()) +
                         ":" + std::to_string(local.port());
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->DoAccept();
  int n = impl_->opts.threads > 0 ? impl_->opts.threads
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  return Status::OK();
}

std::string Server::LocalAddress() const { return impl_->local_address; }

size_t Server::InFlight() const { return impl_->in_flight.load(); }

void Server::Stop(std::chrono::milliseconds grace) {
  if (impl_->threads.empty()) return;
  impl_->stopping.store(true);
  net::post(impl_->ioc, [this] {
    boost::system::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
  });
  auto for_each_session = [this](auto fn) {
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(impl_->sessions_mu);
      for (auto& [p, w] : impl_->sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) fn(*s);
  };
  for_each_session([](Session& s) { s.CloseIfIdle(); });
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (impl_->in_flight.load() > 0) {
    spdlog::warn("shutdown grace of {} ms passed with {} requests unanswered; closing them",
                 grace.count(), impl_->in_flight.load());
  }
  for_each_session([](Session& s) { s.ForceClose(); });
  impl_->work.reset();
  // Let the posted closes run, then stop whatever is left (e.g. handlers that never answer).
  auto stop_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < stop_deadline) {
    {
      std::lock_guard lock(impl_->sessions_mu);
      if (impl_->sessions.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  {
    std::lock_guard lock(impl_->sessions_mu);
    impl_->sessions.clear();
  }
}

}  // namespace sluice::http
