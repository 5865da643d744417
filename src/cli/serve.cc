#include "cli/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "buffer/buffer_factory.h"
#include "cli/version.h"
#include "common/json_writer.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/units.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/server.h"
#include "ingest/ingest_service.h"

namespace sluice::cli {
namespace {

// A configuration error: the sentence is for the operator; exit code 2.
int ConfigError(const std::string& message) {
  std::fprintf(stderr, "sluice serve: %s\n", message.c_str());
  return 2;
}

// Holds an exclusive flock on DATA_DIR/LOCK so two servers never share a data dir.
class DataDirLock {
 public:
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Acquire(const std::filesystem::path& dir) {
    std::string path = (dir / "LOCK").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::FromErrno("open " + path, errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return Status::FailedPrecondition("data dir " + dir.string() +
                                        " is in use by another sluice process (" + path +
                                        " is locked); stop it or choose another --data-dir");
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::write(fd_, pid.data(), pid.size()) < 0) {
      return Status::FromErrno("write " + path, errno);
    }
    return Status::OK();
  }

 private:
  int fd_ = -1;
};

struct Parsed {
  uint64_t buffer_max_bytes, buffer_segment_bytes, max_body_bytes, max_event_bytes;
  std::chrono::milliseconds read_timeout, idle_timeout, shutdown_grace;
};

Result<Parsed> ParseUnits(const ServeConfig& c) {
  Parsed p;
  auto bytes = [](const std::string& flag, const std::string& v, uint64_t* out) -> Status {
    auto r = ParseBytes(v);
    if (!r.ok()) return r.status().WithContext("--" + flag);
    *out = *r;
    return Status::OK();
  };
  auto dur = [](const std::string& flag, const std::string& v,
                std::chrono::milliseconds* out) -> Status {
    auto r = ParseDuration(v);
    if (!r.ok()) return r.status().WithContext("--" + flag);
    *out = *r;
    return Status::OK();
  };
  SLUICE_RETURN_IF_ERROR(bytes("buffer-max-bytes", c.buffer_max_bytes, &p.buffer_max_bytes));
  SLUICE_RETURN_IF_ERROR(
      bytes("buffer-segment-bytes", c.buffer_segment_bytes, &p.buffer_segment_bytes));
  SLUICE_RETURN_IF_ERROR(bytes("max-body-bytes", c.max_body_bytes, &p.max_body_bytes));
  SLUICE_RETURN_IF_ERROR(bytes("max-event-bytes", c.max_event_bytes, &p.max_event_bytes));
  SLUICE_RETURN_IF_ERROR(dur("read-timeout", c.read_timeout, &p.read_timeout));
  SLUICE_RETURN_IF_ERROR(dur("idle-timeout", c.idle_timeout, &p.idle_timeout));
  SLUICE_RETURN_IF_ERROR(dur("shutdown-grace", c.shutdown_grace, &p.shutdown_grace));
  if (p.max_event_bytes > p.max_body_bytes) {
    return Status::InvalidArgument("--max-event-bytes must not be larger than --max-body-bytes");
  }
  if (p.buffer_segment_bytes < 4096) {
    return Status::InvalidArgument("--buffer-segment-bytes must be at least 4KiB");
  }
  return p;
}

}  // namespace

int RunServe(const ServeConfig& config) {
  InitLogging(config.log_level);

  // Signals are taken synchronously by this thread (sigwait); block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto parsed = ParseUnits(config);
  if (!parsed.ok()) return ConfigError(parsed.status().message());

  http::KeyStore keys;
  for (const auto& k : config.write_keys) {
    if (Status st = keys.Add(k, http::Role::kWrite); !st.ok()) return ConfigError(st.message());
  }
  for (const auto& k : config.read_keys) {
    if (Status st = keys.Add(k, http::Role::kRead); !st.ok()) return ConfigError(st.message());
  }
  std::string host;
  unsigned short port;
  if (Status st = http::SplitHostPort(config.listen, &host, &port); !st.ok()) {
    return ConfigError(st.message());
  }
  if (!keys.HasRole(http::Role::kWrite) && !http::IsLoopbackHost(host)) {
    return ConfigError("refusing to listen on " + config.listen +
                       " with no write keys: anyone who can reach it could write events. Add "
                       "--write-key NAME:SECRET (or SLUICE_WRITE_KEY), or listen on 127.0.0.1");
  }

  std::filesystem::path data_dir(config.data_dir);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return ConfigError("cannot create data dir " + config.data_dir + ": " + ec.message());
  }
  DataDirLock lock;
  if (Status st = lock.Acquire(data_dir); !st.ok()) return ConfigError(st.message());

  buffer::BufferConfig bc;
  bc.kind = config.buffer;
  bc.dir = (data_dir / "buffer").string();
  bc.max_bytes = parsed->buffer_max_bytes;
  bc.segment_bytes = parsed->buffer_segment_bytes;
  bc.fsync = config.buffer_fsync;
  auto buffer_or = buffer::MakeBuffer(bc);
  if (!buffer_or.ok()) {
    if (buffer_or.status().code() == StatusCode::kInvalidArgument) {
      return ConfigError(buffer_or.status().message());
    }
    spdlog::error("cannot open the buffer: {}", buffer_or.status().ToString());
    return 1;
  }
  std::unique_ptr<buffer::Buffer> buffer = std::move(buffer_or).value();
  if (!config.buffer_fsync && config.buffer == "disk") {
    spdlog::warn("--buffer-fsync=false: acknowledged events may be lost if the machine crashes");
  }

  auto& reg = metrics::Default();
  buffer::Buffer* buf = buffer.get();
  std::vector<metrics::CallbackHandle> gauges;
  gauges.push_back(reg.AddGaugeCallback("sluice_buffer_depth_events",
                                        "Events (and quarantine records) not yet loaded", {},
                                        [buf] { return double(buf->Stats().depth_records); }));
  gauges.push_back(reg.AddGaugeCallback("sluice_buffer_depth_bytes",
                                        "Bytes of records not yet loaded", {},
                                        [buf] { return double(buf->Stats().depth_bytes); }));
  gauges.push_back(reg.AddGaugeCallback("sluice_buffer_used_bytes",
                                        "Bytes counted against the buffer cap", {},
                                        [buf] { return double(buf->Stats().used_bytes); }));
  gauges.push_back(reg.AddGaugeCallback("sluice_buffer_capacity_bytes", "The buffer cap", {},
                                        [buf] { return double(buf->Stats().capacity_bytes); }));

  http::ServerOptions so;
  so.listen = config.listen;
  so.threads = config.threads;
  so.max_body_bytes = parsed->max_body_bytes;
  so.read_timeout = parsed->read_timeout;
  so.idle_timeout = parsed->idle_timeout;
  http::Server server(so);

  http::RateLimiter limiter(config.rate_limit, config.rate_burst);
  ingest::IngestOptions io;
  io.parse.max_event_bytes = parsed->max_event_bytes;
  io.parse.max_batch_events = config.max_batch_events;
  io.noop_route = config.noop_route;
  ingest::IngestService ingest(io, buf, &keys, &limiter);
  ingest.RegisterRoutes(&server);

  server.Route("GET", "/healthz", [](http::Request&, http::Responder done) {
    done(http::Response::Json(200, "{\"status\":\"ok\"}"));
  });
  // Ready while the buffer can still take a large request: free space of at least
  // min(max-body-bytes, 10% of the cap). Below that, appends start failing with 503.
  const uint64_t reserve = std::min<uint64_t>(parsed->max_body_bytes, bc.max_bytes / 10);
  server.Route("GET", "/readyz", [buf, reserve](http::Request&, http::Responder done) {
    buffer::BufferStats s = buf->Stats();
    bool full = s.capacity_bytes > 0 && s.used_bytes + reserve > s.capacity_bytes;
    JsonWriter w;
    w.BeginObject().Key("ready").Bool(!full);
    w.Key("buffer").BeginObject().Key("depth_events").Uint(s.depth_records);
    w.Key("used_bytes").Uint(s.used_bytes).Key("capacity_bytes").Uint(s.capacity_bytes);
    w.EndObject();
    if (full) w.Key("reason").String("buffer is full");
    w.EndObject();
    done(http::Response::Json(full ? 503 : 200, w.Take()));
  });
  server.Route("GET", "/metrics", [](http::Request&, http::Responder done) {
    http::Response r;
    r.body = metrics::Default().RenderPrometheus();
    r.content_type = "text/plain; version=0.0.4";
    done(std::move(r));
  });

  if (Status st = server.Start(); !st.ok()) {
    if (st.code() == StatusCode::kInvalidArgument) return ConfigError(st.message());
    spdlog::error("{}", st.message());
    return 1;
  }
  std::string addr = server.LocalAddress();
  {
    // For scripts and tests that listen on port 0.
    std::ofstream f(data_dir / "serve.addr.tmp");
    f << addr << "\n";
  }
  std::filesystem::rename(data_dir / "serve.addr.tmp", data_dir / "serve.addr", ec);

  spdlog::info("sluice {} listening on http://{} (data dir {}, buffer {})", kVersion, addr,
               config.data_dir, config.buffer);
  if (keys.empty()) {
    spdlog::info("no keys configured: listening on loopback only, without authentication");
  }
  std::printf(
      "\nSluice is running at http://%s  (metrics: http://%s/metrics)\n"
      "Send an event:\n"
      "  curl -s http://%s/v1/track -H 'Content-Type: application/json' \\\n"
      "    -d '{\"userId\":\"u1\",\"event\":\"Signed Up\",\"properties\":{\"plan\":\"pro\"}}'\n"
      "Stop with Ctrl+C.\n\n",
      addr.c_str(), addr.c_str(), addr.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down: finishing requests in flight", strsignal(sig));
  server.Stop(parsed->shutdown_grace);
  buffer->Close();
  gauges.clear();
  {
    buffer::BufferStats s = buffer->Stats();
    spdlog::info("buffer flushed and closed ({} records not yet loaded); bye", s.depth_records);
  }
  std::filesystem::remove(data_dir / "serve.addr", ec);
  return 0;
}

}  // namespace sluice::cli
