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
#include <optional>

#include "buffer/buffer_factory.h"
#include "cli/version.h"
#include "common/json_writer.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/units.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/server.h"
#include "export/exporter.h"
#include "ingest/ingest_service.h"
#include "loader/loader.h"
#include "objstore/object_store.h"
#include "query/query_engine.h"
#include "store/duckdb_store.h"

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
  std::chrono::milliseconds export_interval, export_grace, hot_retention, dedup_window;
  std::chrono::milliseconds loader_batch_delay, query_timeout;
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
  SLUICE_RETURN_IF_ERROR(dur("export-interval", c.export_interval, &p.export_interval));
  SLUICE_RETURN_IF_ERROR(dur("export-grace", c.export_grace, &p.export_grace));
  SLUICE_RETURN_IF_ERROR(dur("hot-retention", c.hot_retention, &p.hot_retention));
  SLUICE_RETURN_IF_ERROR(dur("dedup-window", c.dedup_window, &p.dedup_window));
  SLUICE_RETURN_IF_ERROR(dur("loader-batch-delay", c.loader_batch_delay, &p.loader_batch_delay));
  SLUICE_RETURN_IF_ERROR(dur("query-timeout", c.query_timeout, &p.query_timeout));
  if (p.export_interval < std::chrono::seconds(1) ||
      p.export_interval % std::chrono::seconds(1) != std::chrono::milliseconds(0) ||
      std::chrono::hours(24) % p.export_interval != std::chrono::milliseconds(0)) {
    return Status::InvalidArgument(
        "--export-interval must be whole seconds that divide a day evenly (e.g. 10m, 1h; "
        "seconds such as 30s are for tests)");
  }
  if (c.store != "duckdb") {
    return Status::InvalidArgument("--store " + c.store +
                                   " is not supported yet; use --store duckdb (PostgreSQL comes "
                                   "in a later release)");
  }
  if (p.max_event_bytes > p.max_body_bytes) {
    return Status::InvalidArgument("--max-event-bytes must not be larger than --max-body-bytes");
  }
  if (p.buffer_segment_bytes < 4096) {
    return Status::InvalidArgument("--buffer-segment-bytes must be at least 4KiB");
  }
  return p;
}


// Everything `serve` and `export --once` share: the locked data dir, the buffer, the object
// store, the hot store, the loader and the exporter. Destroyed in reverse order.
struct Core {
  std::filesystem::path data_dir;
  DataDirLock lock;
  std::unique_ptr<buffer::Buffer> buffer;
  std::unique_ptr<objstore::ObjectStore> objects;
  std::unique_ptr<store::DuckDbStore> store;
  std::unique_ptr<loader::Loader> loader;
  std::unique_ptr<exporter::Exporter> exporter;
};

// Opens the core. Returns 0, or the exit code after saying what went wrong: 2 for what the
// operator must fix, 1 for a failure at run time.
int OpenCore(const ServeConfig& config, const Parsed& parsed, Core* core) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return ConfigError("cannot create data dir " + config.data_dir + ": " + ec.message());
  core->data_dir = std::filesystem::absolute(config.data_dir).lexically_normal();
  if (Status st = core->lock.Acquire(core->data_dir); !st.ok()) return ConfigError(st.message());

  buffer::BufferConfig bc;
  bc.kind = config.buffer;
  bc.dir = (core->data_dir / "buffer").string();
  bc.max_bytes = parsed.buffer_max_bytes;
  bc.segment_bytes = parsed.buffer_segment_bytes;
  bc.fsync = config.buffer_fsync;
  auto buffer_or = buffer::MakeBuffer(bc);
  if (!buffer_or.ok()) {
    if (buffer_or.status().code() == StatusCode::kInvalidArgument) {
      return ConfigError(buffer_or.status().message());
    }
    spdlog::error("cannot open the buffer: {}", buffer_or.status().ToString());
    return 1;
  }
  core->buffer = std::move(buffer_or).value();
  if (!config.buffer_fsync && config.buffer == "disk") {
    spdlog::warn("--buffer-fsync=false: acknowledged events may be lost if the machine crashes");
  }

  std::string object_url = config.object_store.empty()
                               ? "file://" + (core->data_dir / "objects").string()
                               : config.object_store;
  auto objects_or = objstore::MakeObjectStore(object_url);
  if (!objects_or.ok()) return ConfigError(objects_or.status().message());
  core->objects = std::move(objects_or).value();
  std::optional<std::string> events_root = core->objects->LocalPath("events");
  if (!events_root) {
    return ConfigError("--object-store " + object_url +
                       " is not a local directory; only file:// is supported in this release");
  }
  std::string objects_root = std::filesystem::path(*events_root).parent_path().string();

  const int64_t window_us = parsed.export_interval.count() * 1000;
  store::DuckDbStoreOptions so;
  so.path = (core->data_dir / "hot.duckdb").string();
  so.window_us = window_us;
  so.parquet_glob = *events_root + "/**/*.parquet";
  so.sandbox.allowed_directories = {core->data_dir.string(), objects_root};
  so.sandbox.memory_limit = config.duckdb_memory_limit;
  auto store_or = store::DuckDbStore::Open(so);
  if (!store_or.ok()) {
    spdlog::error("cannot open the hot store: {}", store_or.status().ToString());
    return 1;
  }
  core->store = std::move(store_or).value();

  loader::LoaderOptions lo;
  lo.shard = "disk";
  lo.max_batch_records = config.loader_batch_events;
  lo.max_batch_delay = parsed.loader_batch_delay;
  lo.dedup_window = parsed.dedup_window;
  lo.dedup_max_ids = config.dedup_max_ids;
  core->loader = std::make_unique<loader::Loader>(lo, core->buffer.get(), core->store.get());

  exporter::ExporterOptions eo;
  eo.window_us = window_us;
  eo.grace_us = parsed.export_grace.count() * 1000;
  eo.hot_retention_us = parsed.hot_retention.count() * 1000;
  eo.shard = "disk";
  eo.tmp_dir = (core->data_dir / "export-tmp").string();
  eo.poll_us = std::min<int64_t>(window_us, 10'000'000) / 2;
  loader::Loader* ld = core->loader.get();
  core->exporter = std::make_unique<exporter::Exporter>(
      eo, core->store.get(), core->objects.get(), [ld] { return ld->Watermark(); });
  return 0;
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

  Core core;
  if (int rc = OpenCore(config, *parsed, &core); rc != 0) return rc;
  const std::filesystem::path& data_dir = core.data_dir;
  std::error_code ec;

  auto& reg = metrics::Default();
  buffer::Buffer* buf = core.buffer.get();
  loader::Loader* ld = core.loader.get();
  store::DuckDbStore* hot = core.store.get();
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
  gauges.push_back(reg.AddGaugeCallback(
      "sluice_loader_lag_seconds",
      "Age of the newest loaded event while the loader is behind (0 when caught up)", {}, [ld] {
        auto s = ld->Stats();
        if (s.drained || s.max_received_at_us == 0) return 0.0;
        return double(SystemClock()->NowMicros() - s.max_received_at_us) / 1e6;
      }));
  gauges.push_back(reg.AddGaugeCallback("sluice_hot_store_bytes", "Bytes of the hot store on disk",
                                        {}, [hot] {
                                          auto b = hot->DiskBytes();
                                          return b.ok() ? double(*b) : 0.0;
                                        }));

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

  query::QueryOptions qo;
  qo.connections = config.query_connections;
  qo.timeout = parsed->query_timeout;
  qo.max_rows = config.query_max_rows;
  query::QueryEngine queries(qo, core.store->database());
  if (Status st = queries.Start(); !st.ok()) {
    spdlog::error("cannot start the query engine: {}", st.ToString());
    return 1;
  }
  queries.RegisterRoutes(&server, &keys);

  server.Route("GET", "/healthz", [](http::Request&, http::Responder done) {
    done(http::Response::Json(200, "{\"status\":\"ok\"}"));
  });
  // Ready while the buffer can still take a large request: free space of at least
  // min(max-body-bytes, 10% of the cap). Below that, appends start failing with 503.
  const uint64_t reserve = std::min<uint64_t>(parsed->max_body_bytes, parsed->buffer_max_bytes / 10);
  server.Route("GET", "/readyz", [buf, ld, reserve](http::Request&, http::Responder done) {
    buffer::BufferStats s = buf->Stats();
    loader::LoaderStats l = ld->Stats();
    bool full = s.capacity_bytes > 0 && s.used_bytes + reserve > s.capacity_bytes;
    JsonWriter w;
    w.BeginObject().Key("ready").Bool(!full);
    w.Key("buffer").BeginObject().Key("depth_events").Uint(s.depth_records);
    w.Key("used_bytes").Uint(s.used_bytes).Key("capacity_bytes").Uint(s.capacity_bytes);
    w.EndObject();
    w.Key("loader").BeginObject().Key("committed_offset").Uint(l.committed_offset);
    w.Key("caught_up").Bool(l.drained);
    if (!l.last_error.empty()) w.Key("last_error").String(l.last_error);
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

  if (!config.loader) {
    spdlog::warn("--loader=false: events are buffered but not loaded; nothing becomes queryable");
  } else if (Status st = core.loader->Start(); !st.ok()) {
    spdlog::error("cannot start the loader: {}", st.ToString());
    return 1;
  }
  core.exporter->Start();

  if (Status st = server.Start(); !st.ok()) {
    core.exporter->Stop();
    core.loader->Stop();
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

  spdlog::info("sluice {} listening on http://{} (data dir {}, buffer {}, store {}, objects {})",
               kVersion, addr, data_dir.string(), config.buffer, config.store,
               core.objects->Url());
  if (keys.empty()) {
    spdlog::info("no keys configured: listening on loopback only, without authentication");
  }
  std::printf(
      "\nSluice is running at http://%s  (metrics: http://%s/metrics)\n"
      "Send an event:\n"
      "  curl -s http://%s/v1/track -H 'Content-Type: application/json' \\\n"
      "    -d '{\"userId\":\"u1\",\"event\":\"Signed Up\",\"properties\":{\"plan\":\"pro\"}}'\n"
      "Query it a second later:\n"
      "  curl -s http://%s/v1/query -d '{\"sql\":\"SELECT event, count(*) FROM events GROUP BY 1\"}'\n"
      "Stop with Ctrl+C.\n\n",
      addr.c_str(), addr.c_str(), addr.c_str(), addr.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down: finishing requests in flight", strsignal(sig));
  server.Stop(parsed->shutdown_grace);
  queries.Stop();
  core.exporter->Stop();
  core.loader->Stop();
  core.buffer->Close();
  gauges.clear();
  {
    buffer::BufferStats s = core.buffer->Stats();
    spdlog::info("buffer flushed and closed ({} records not yet loaded); bye", s.depth_records);
  }
  std::filesystem::remove(data_dir / "serve.addr", ec);
  return 0;
}

int RunExportOnce(const ServeConfig& config) {
  InitLogging(config.log_level);
  auto parsed = ParseUnits(config);
  if (!parsed.ok()) return ConfigError(parsed.status().message());
  Core core;
  if (int rc = OpenCore(config, *parsed, &core); rc != 0) return rc;
  const int64_t t0 = SystemClock()->MonotonicMicros();
  if (Status st = core.loader->DrainOnce(); !st.ok()) {
    std::fprintf(stderr, "sluice export: loading the buffer failed: %s\n", st.ToString().c_str());
    return 1;
  }
  const double load_s = double(SystemClock()->MonotonicMicros() - t0) / 1e6;
  const loader::LoaderStats ls = core.loader->Stats();
  std::printf("loaded %llu events (%llu duplicates dropped, %llu rejections) in %.2f s: %.0f events/s\n",
              static_cast<unsigned long long>(ls.events),
              static_cast<unsigned long long>(ls.duplicates),
              static_cast<unsigned long long>(ls.rejections), load_s,
              load_s > 0 ? double(ls.events) / load_s : 0.0);
  auto report = core.exporter->RunOnce(exporter::CloseRule::kWatermarkOnly);
  if (!report.ok()) {
    std::fprintf(stderr, "sluice export: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("%s", exporter::FormatReport(*report).c_str());
  core.buffer->Close();
  if (!report->error.ok()) {
    std::fprintf(stderr, "sluice export: %s\n", report->error.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace sluice::cli
