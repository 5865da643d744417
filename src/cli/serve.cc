#include "cli/serve.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/core.h"
#include "cli/version.h"
#include "common/json_writer.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/thread_priority.h"
#include "common/writeback_pacer.h"
#include "export/exporter.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/server.h"
#include "ingest/ingest_service.h"
#include "loader/loader.h"
#include "objstore/object_store.h"
#include "query/postgres_query.h"
#include "query/query_engine.h"
#include "store/duckdb_store.h"
#include "web/live.h"
#include "web/web_routes.h"

namespace sluice::cli {

namespace {

// The history the loaders' dedup reads when they start (Core::HoldDedupHistory). Without it
// (the bucket unreachable) they start anyway: the dedup then misses the ids of windows both
// dropped from the hot store and evicted from the cache, which with the default
// --hot-retention (2h) > --dedup-window (10m) are none.
std::unique_ptr<query::HistoryLease> HoldDedupHistory(Core& core,
                                                      std::chrono::milliseconds window) {
  auto lease = core.HoldDedupHistory(window);
  if (lease.ok()) return std::move(lease).value();
  spdlog::warn(
      "history cache: cannot fetch the history the dedup reads at start ({}); "
      "going on without it",
      lease.status().ToString());
  return nullptr;
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

  // Before OpenCore: the DuckDB workers it starts inherit the background priority.
  SetBackgroundNice(config.background_nice);
  Core core;
  if (int rc = OpenCore(config, *parsed, &core); rc != 0) return rc;
  const std::filesystem::path& data_dir = core.data_dir;
  std::error_code ec;
  // DuckDB's files sit directly in the data dir; exports are written to export-tmp first.
  WritebackPacer pacer({.dirs = {data_dir.string(), (data_dir / "export-tmp").string()},
                        .interval = parsed->writeback_pace});
  if (parsed->writeback_pace.count() > 0) pacer.Start();

  auto& reg = metrics::Default();
  buffer::ShardRouter* router = core.router.get();
  store::HotStore* hot = core.store;
  std::vector<metrics::CallbackHandle> gauges;
  for (const Shard& shard : core.shards) {
    buffer::Buffer* buf = shard.buffer.get();
    loader::Loader* ld = shard.loader.get();
    const metrics::Labels l = {{"shard", shard.name}};
    gauges.push_back(reg.AddGaugeCallback("sluice_buffer_depth_events",
                                          "Events (and quarantine records) not yet loaded", l,
                                          [buf] { return double(buf->Stats().depth_records); }));
    gauges.push_back(reg.AddGaugeCallback("sluice_buffer_depth_bytes",
                                          "Bytes of records not yet loaded", l,
                                          [buf] { return double(buf->Stats().depth_bytes); }));
    gauges.push_back(reg.AddGaugeCallback("sluice_buffer_used_bytes",
                                          "Bytes counted against the buffer cap", l,
                                          [buf] { return double(buf->Stats().used_bytes); }));
    gauges.push_back(reg.AddGaugeCallback("sluice_buffer_capacity_bytes", "The buffer cap", l,
                                          [buf] { return double(buf->Stats().capacity_bytes); }));
    gauges.push_back(reg.AddGaugeCallback(
        "sluice_buffer_up", "1 while the shard can take appends (its Redis answers), else 0", l,
        [buf] { return buf->LastError().empty() ? 1.0 : 0.0; }));
    gauges.push_back(reg.AddGaugeCallback(
        "sluice_loader_lag_seconds",
        "Age of the newest loaded event while the loader is behind (0 when caught up)", l, [ld] {
          auto s = ld->Stats();
          if (s.drained || s.max_received_at_us == 0) return 0.0;
          return double(SystemClock()->NowMicros() - s.max_received_at_us) / 1e6;
        }));
  }
  gauges.push_back(
      reg.AddGaugeCallback("sluice_hot_store_bytes", "Bytes of the hot store on disk", {}, [hot] {
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
  ingest::IngestService ingest(io, router, &keys, &limiter);
  ingest.RegisterRoutes(&server);

  query::QueryOptions qo;
  qo.connections = config.query_connections;
  qo.timeout = parsed->query_timeout;
  qo.max_rows = config.query_max_rows;
  query::QueryEngine queries(qo, core.duck->database());
  queries.SetHistoryGate(core.history.get());
  if (Status st = queries.Start(); !st.ok()) {
    spdlog::error("cannot start the query engine: {}", st.ToString());
    return 1;
  }
  // engine=postgres: on the replica (--store-read), else the primary.
  std::unique_ptr<query::PostgresQueryEngine> pg_queries;
  if (core.postgres) {
    query::PostgresQueryOptions po;
    po.conninfo = config.store_read.empty() ? config.store : config.store_read;
    po.limits = qo;
    po.allow_privileged_role = config.query_allow_privileged_role;
    pg_queries = std::make_unique<query::PostgresQueryEngine>(po);
    if (Status st = pg_queries->Start(); !st.ok()) {
      if (st.code() == StatusCode::kFailedPrecondition ||
          st.code() == StatusCode::kInvalidArgument) {
        return ConfigError(st.message());
      }
      spdlog::error("cannot start the PostgreSQL query engine: {}", st.ToString());
      return 1;
    }
  }
  queries.RegisterRoutes(&server, &keys, pg_queries.get(), /*stats=*/pg_queries.get());

  // The dashboard (GET /, /assets/…) and its live figures (GET /v1/live), sampled once a
  // second from the metrics registry.
  web::LiveSources live_sources;
  live_sources.ack_routes = ingest::IngestPaths();
  exporter::Exporter* window_exporter = core.exporter.get();
  live_sources.recent_exports = [window_exporter] {
    std::vector<web::LiveExport> out;
    for (const exporter::WindowExport& e : window_exporter->RecentExports()) {
      out.push_back({e.start_us, e.end_us, e.rows, e.bytes, e.seconds, e.key});
    }
    return out;
  };
  live_sources.recent_rejections = [&ingest] {
    std::vector<web::LiveRejection> out;
    for (ingest::RecentRejection& r : ingest.RecentRejections()) {
      out.push_back(
          {r.received_at_us, std::move(r.source), std::move(r.reason), std::move(r.error)});
    }
    return out;
  };
  web::LiveSampler live({}, std::move(live_sources));
  web::RegisterRoutes(&server, &keys, &live);

  server.Route("GET", "/healthz", [](http::Request&, http::Responder done) {
    done(http::Response::Json(200, "{\"status\":\"ok\"}"));
  });
  // Ready while the buffer can still take a large request: free space of at least
  // min(max-body-bytes, 10% of the cap). Below that, appends start failing with 503.
  const uint64_t reserve =
      std::min<uint64_t>(parsed->max_body_bytes, parsed->buffer_max_bytes / 10);
  server.Route("GET", "/readyz", [&core, router, reserve](http::Request&, http::Responder done) {
    // Ready while every shard (also one left on disk, being drained) has room for a large
    // request, and the shards that take appends can take them (a Redis server that does not
    // answer makes the node unready, unless refused requests spill to disk); "buffer" sums the
    // shards that take appends.
    buffer::BufferStats total = router->Stats();
    bool full = false;
    std::string unavailable;
    JsonWriter w;
    w.BeginObject();
    w.Key("buffer").BeginObject().Key("depth_events").Uint(total.depth_records);
    w.Key("used_bytes").Uint(total.used_bytes).Key("capacity_bytes").Uint(total.capacity_bytes);
    if (router->spills()) w.Key("spilled_events").Uint(router->spilled_records());
    w.EndObject();
    w.Key("shards").BeginArray();
    for (const Shard& shard : core.shards) {
      buffer::BufferStats s = shard.buffer->Stats();
      loader::LoaderStats l = shard.loader->Stats();
      const std::string error = shard.buffer->LastError();
      full = full || (s.capacity_bytes > 0 && s.used_bytes + reserve > s.capacity_bytes);
      if (!error.empty() && unavailable.empty()) unavailable = shard.name + ": " + error;
      w.BeginObject().Key("name").String(shard.name);
      w.Key("depth_events").Uint(s.depth_records).Key("used_bytes").Uint(s.used_bytes);
      w.Key("capacity_bytes").Uint(s.capacity_bytes);
      w.Key("committed_offset").Uint(l.committed_offset).Key("caught_up").Bool(l.drained);
      if (!error.empty()) w.Key("buffer_error").String(error);
      if (!l.last_error.empty()) w.Key("last_error").String(l.last_error);
      w.EndObject();
    }
    w.EndArray();
    const bool down = !unavailable.empty() && !router->spills();
    const bool ready = !full && !down;
    w.Key("ready").Bool(ready);
    if (full) {
      w.Key("reason").String("buffer is full");
    } else if (down) {
      w.Key("reason").String("buffer unavailable: " + unavailable);
    } else if (!unavailable.empty()) {
      w.Key("spilling")
          .Bool(true)
          .Key("reason")
          .String("buffer unavailable, spilling to disk: " + unavailable);
    }
    w.EndObject();
    done(http::Response::Json(ready ? 200 : 503, w.Take()));
  });
  server.Route("GET", "/metrics", [](http::Request&, http::Responder done) {
    http::Response r;
    r.body = metrics::Default().RenderPrometheus();
    r.content_type = "text/plain; version=0.0.4";
    done(std::move(r));
  });

  if (!config.loader) {
    spdlog::warn("--loader=false: events are buffered but not loaded; nothing becomes queryable");
  } else {
    auto dedup_history = HoldDedupHistory(core, parsed->dedup_window);
    for (Shard& shard : core.shards) {
      if (Status st = shard.loader->Start(); !st.ok()) {
        spdlog::error("cannot start the loader of buffer shard {}: {}", shard.name, st.ToString());
        return 1;
      }
    }
  }
  core.exporter->Start();
  live.Start();

  if (Status st = server.Start(); !st.ok()) {
    live.Stop();
    core.exporter->Stop();
    for (Shard& shard : core.shards) shard.loader->Stop();
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
               kVersion, addr, data_dir.string(), config.buffer, RedactUrl(config.store),
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
      "  curl -s http://%s/v1/query -d '{\"sql\":\"SELECT event, count(*) FROM events GROUP BY "
      "1\"}'\n"
      "Dashboard and SQL console: http://%s/\n"
      "Stop with Ctrl+C.\n\n",
      addr.c_str(), addr.c_str(), addr.c_str(), addr.c_str(), addr.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down: finishing requests in flight", strsignal(sig));
  server.Stop(parsed->shutdown_grace);
  live.Stop();
  queries.Stop();
  if (pg_queries) pg_queries->Stop();
  core.exporter->Stop();
  for (Shard& shard : core.shards) shard.loader->Stop();
  for (Shard& shard : core.shards) shard.buffer->Close();
  gauges.clear();
  spdlog::info("buffer flushed and closed ({} records not yet loaded); bye",
               router->Stats().depth_records);
  std::filesystem::remove(data_dir / "serve.addr", ec);
  return 0;
}

int RunExportOnce(const ServeConfig& config) {
  InitLogging(config.log_level);
  auto parsed = ParseUnits(config);
  if (!parsed.ok()) return ConfigError(parsed.status().message());
  Core core;
  if (int rc = OpenCore(config, *parsed, &core); rc != 0) return rc;
  auto dedup_history = HoldDedupHistory(core, parsed->dedup_window);
  // The shards load in parallel (each loader commits its own share).
  const int64_t t0 = SystemClock()->MonotonicMicros();
  std::vector<Status> drained(core.shards.size());
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < core.shards.size(); ++i) {
      threads.emplace_back([&, i] { drained[i] = core.shards[i].loader->DrainOnce(); });
    }
  }
  for (size_t i = 0; i < drained.size(); ++i) {
    if (!drained[i].ok()) {
      std::fprintf(stderr, "sluice export: loading buffer shard %s failed: %s\n",
                   core.shards[i].name.c_str(), drained[i].ToString().c_str());
      return 1;
    }
  }
  dedup_history.reset();  // before exporting: placing exported files may remove cached ones
  const double load_s = double(SystemClock()->MonotonicMicros() - t0) / 1e6;
  loader::LoaderStats ls;
  for (const Shard& shard : core.shards) {
    loader::LoaderStats s = shard.loader->Stats();
    ls.events += s.events;
    ls.duplicates += s.duplicates;
    ls.rejections += s.rejections;
  }
  std::printf(
      "loaded %llu events (%llu duplicates dropped, %llu rejections) in %.2f s: %.0f events/s\n",
      static_cast<unsigned long long>(ls.events), static_cast<unsigned long long>(ls.duplicates),
      static_cast<unsigned long long>(ls.rejections), load_s,
      load_s > 0 ? double(ls.events) / load_s : 0.0);
  auto report = core.exporter->RunOnce(exporter::CloseRule::kWatermarkOnly);
  if (!report.ok()) {
    std::fprintf(stderr, "sluice export: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("%s", exporter::FormatReport(*report).c_str());
  for (Shard& shard : core.shards) shard.buffer->Close();
  if (!report->error.ok()) {
    std::fprintf(stderr, "sluice export: %s\n", report->error.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace sluice::cli
