#include "cli/core.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>

#include "buffer/buffer_factory.h"
#include "buffer/redis_streams.h"
#include "common/units.h"

namespace sluice::cli {

int ConfigError(const std::string& message) {
  std::fprintf(stderr, "sluice serve: %s\n", message.c_str());
  return 2;
}

std::string RedactUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t at = url.find('@', scheme + 3);
  const size_t colon = url.find(':', scheme + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status DataDirLock::Acquire(const std::filesystem::path& dir) {
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
  SLUICE_RETURN_IF_ERROR(bytes("object-store-multipart-threshold",
                               c.object_store_multipart_threshold,
                               &p.object_store_multipart_threshold));
  SLUICE_RETURN_IF_ERROR(
      bytes("object-store-part-size", c.object_store_part_size, &p.object_store_part_size));
  SLUICE_RETURN_IF_ERROR(
      bytes("history-cache-bytes", c.history_cache_bytes, &p.history_cache_bytes));
  SLUICE_RETURN_IF_ERROR(bytes("duckdb-checkpoint-threshold", c.duckdb_checkpoint_threshold,
                               &p.duckdb_checkpoint_threshold));
  if (p.duckdb_checkpoint_threshold < (1u << 20)) {
    return Status::InvalidArgument(
        "--duckdb-checkpoint-threshold must be at least 1MiB (the default is 1GB)");
  }
  if (c.object_store_parallel < 1 || c.object_store_parallel > 64) {
    return Status::InvalidArgument("--object-store-parallel must be between 1 and 64");
  }
  if (p.history_cache_bytes < (1u << 20)) {
    return Status::InvalidArgument("--history-cache-bytes must be at least 1MiB");
  }
  SLUICE_RETURN_IF_ERROR(dur("read-timeout", c.read_timeout, &p.read_timeout));
  SLUICE_RETURN_IF_ERROR(dur("idle-timeout", c.idle_timeout, &p.idle_timeout));
  SLUICE_RETURN_IF_ERROR(dur("shutdown-grace", c.shutdown_grace, &p.shutdown_grace));
  SLUICE_RETURN_IF_ERROR(dur("export-interval", c.export_interval, &p.export_interval));
  SLUICE_RETURN_IF_ERROR(dur("export-grace", c.export_grace, &p.export_grace));
  SLUICE_RETURN_IF_ERROR(dur("hot-retention", c.hot_retention, &p.hot_retention));
  SLUICE_RETURN_IF_ERROR(dur("dedup-window", c.dedup_window, &p.dedup_window));
  SLUICE_RETURN_IF_ERROR(dur("loader-batch-delay", c.loader_batch_delay, &p.loader_batch_delay));
  SLUICE_RETURN_IF_ERROR(dur("query-timeout", c.query_timeout, &p.query_timeout));
  SLUICE_RETURN_IF_ERROR(dur("writeback-pace", c.writeback_pace, &p.writeback_pace));
  SLUICE_RETURN_IF_ERROR(dur("pg-partition", c.pg_partition, &p.pg_partition));
  SLUICE_RETURN_IF_ERROR(dur("replica-wait", c.replica_wait, &p.replica_wait));
  SLUICE_RETURN_IF_ERROR(dur("redis-claim-after", c.redis_claim_after, &p.redis_claim_after));
  SLUICE_RETURN_IF_ERROR(dur("redis-wait-timeout", c.redis_wait_timeout, &p.redis_wait_timeout));
  SLUICE_RETURN_IF_ERROR(
      dur("history-manifest-refresh", c.history_manifest_refresh, &p.history_manifest_refresh));
  if (p.history_manifest_refresh < std::chrono::seconds(1)) {
    return Status::InvalidArgument("--history-manifest-refresh must be at least 1s");
  }
  if (c.buffer.rfind("redis://", 0) == 0) {
    for (size_t start = 0;;) {
      const size_t comma = c.buffer.find(',', start);
      std::string url = c.buffer.substr(start, comma == std::string::npos ? comma : comma - start);
      if (auto u = buffer::ParseRedisUrl(url); !u.ok()) {
        return Status::InvalidArgument("--buffer: " + u.status().message() +
                                       " (expected redis://[:PASSWORD@]HOST:PORT[/DB],…)");
      }
      p.redis_urls.push_back(std::move(url));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (c.buffer_shards != 0 && size_t(c.buffer_shards) != p.redis_urls.size()) {
      return Status::InvalidArgument(
          "with --buffer redis://…, each URL is one shard: leave --buffer-shards at 0");
    }
    if (c.redis_write_shard < -1 || c.redis_write_shard >= int(p.redis_urls.size())) {
      return Status::InvalidArgument(
          "--redis-write-shard must be -1 (every --buffer URL) or "
          "the 0-based index of one of the " +
          std::to_string(p.redis_urls.size()) + " URLs");
    }
    if (c.redis_wait < 0) return Status::InvalidArgument("--redis-wait must be 0 or more");
    if (p.redis_claim_after < std::chrono::seconds(1)) {
      return Status::InvalidArgument("--redis-claim-after must be at least 1s");
    }
  } else if (c.buffer.find("://") != std::string::npos) {
    return Status::InvalidArgument("--buffer must be disk, memory or redis://HOST:PORT[,…]");
  }
  if (c.spill != "none" && c.spill != "disk") {
    return Status::InvalidArgument("--spill must be none or disk");
  }
  if (c.spill == "disk" && p.redis_urls.empty()) {
    return Status::InvalidArgument(
        "--spill disk is for --buffer redis://… (the disk buffer "
        "has nothing to spill to)");
  }
  if (c.spill == "disk" && !c.loader) {
    return Status::InvalidArgument(
        "--spill disk needs the loader: the spill log is loaded "
        "into the hot store by this process (drop --loader=false)");
  }
  if (p.export_interval < std::chrono::seconds(1) ||
      p.export_interval % std::chrono::seconds(1) != std::chrono::milliseconds(0) ||
      std::chrono::hours(24) % p.export_interval != std::chrono::milliseconds(0)) {
    return Status::InvalidArgument(
        "--export-interval must be whole seconds that divide a day evenly (e.g. 10m, 1h; "
        "seconds such as 30s are for tests)");
  }
  p.postgres = c.store.rfind("postgres://", 0) == 0 || c.store.rfind("postgresql://", 0) == 0;
  if (c.store != "duckdb" && !p.postgres) {
    return Status::InvalidArgument(
        "--store " + c.store + " is not a hot store: use duckdb or postgres://USER@HOST:PORT/DB");
  }
  if (!c.store_read.empty() && !p.postgres) {
    return Status::InvalidArgument("--store-read needs --store postgres://…");
  }
  if (p.postgres && (p.pg_partition < p.export_interval ||
                     p.pg_partition % p.export_interval != std::chrono::milliseconds(0))) {
    return Status::InvalidArgument(
        "--pg-partition must be a whole multiple of --export-interval (e.g. 1h for 10m)");
  }
  // Automatic: a full DuckDB row group (122,880 rows), which DuckDB writes straight to the
  // database file, compressed, instead of to the WAL and again at the next checkpoint
  // (measured: ~105,000 events/s from a full buffer against ~85,000 with batches of 20,000).
  // PostgreSQL gains nothing from batches that large.
  p.loader_batch_events = c.loader_batch_events != 0 ? c.loader_batch_events
                          : p.postgres               ? 20'000
                                                     : 122'880;
  if (c.duckdb_threads < 0 || c.duckdb_threads > 256) {
    return Status::InvalidArgument("--duckdb-threads must be between 0 (one per core) and 256");
  }
  if (!(c.export_spread >= 0 && c.export_spread <= 1)) {
    return Status::InvalidArgument(
        "--export-spread must be between 0 (exports run flat out) and 1 (a whole interval)");
  }
  if (c.background_nice < 0 || c.background_nice > 19) {
    return Status::InvalidArgument("--background-nice must be between 0 (off) and 19");
  }
  if (c.pg_analyze_after_rows < 0) {
    return Status::InvalidArgument(
        "--pg-analyze-after-rows must be 0 (leave it to autovacuum) or a positive row count");
  }
  if (c.pg_partitions_ahead < 0 || c.pg_partitions_ahead > 1000) {
    return Status::InvalidArgument("--pg-partitions-ahead must be between 0 and 1000");
  }
  if (p.max_event_bytes > p.max_body_bytes) {
    return Status::InvalidArgument("--max-event-bytes must not be larger than --max-body-bytes");
  }
  if (p.buffer_segment_bytes < 4096) {
    return Status::InvalidArgument("--buffer-segment-bytes must be at least 4KiB");
  }
  if (c.buffer_shards < 0 || c.buffer_shards > 64) {
    return Status::InvalidArgument("--buffer-shards must be between 1 and 64 (0 = automatic)");
  }
  // Automatic: DuckDB takes one writer at a time, so more loaders would only queue; PostgreSQL
  // commits two batches at once on two cores.
  p.buffer_shards = !p.redis_urls.empty()  ? int(p.redis_urls.size())
                    : c.buffer_shards != 0 ? c.buffer_shards
                    : p.postgres           ? 2
                                           : 1;
  if (p.buffer_shards > 1 && p.buffer_max_bytes / uint64_t(p.buffer_shards) < p.max_body_bytes) {
    return Status::InvalidArgument(
        "--buffer-max-bytes is shared by the --buffer-shards: each shard's part must hold at "
        "least one request of --max-body-bytes");
  }
  return p;
}

int64_t Core::Watermark() const {
  int64_t w = INT64_MAX;
  for (const Shard& s : shards) w = std::min(w, s.loader->Watermark());
  return shards.empty() ? 0 : w;
}

Result<std::unique_ptr<query::HistoryLease>> Core::HoldDedupHistory(
    std::chrono::milliseconds dedup_window) {
  if (!history) return std::unique_ptr<query::HistoryLease>();
  SLUICE_ASSIGN_OR_RETURN(int64_t newest, store->MaxReceivedAt());
  // Loader::Init reads event_ids since (its newest received_at) - window; a minute more covers
  // the loaders' own positions being a little behind the store's newest.
  const int64_t since = newest - dedup_window.count() * 1000 - 60'000'000;
  return history->Acquire(since, INT64_MAX,
                          std::chrono::steady_clock::now() + std::chrono::minutes(10));
}

namespace {

std::string ShardName(int i) { return i == 0 ? "disk" : "disk-" + std::to_string(i); }

// "redis:HOST:PORT/DB/STREAM": the same on every node that lists the server the same way,
// and free of the password.
std::string RedisShardName(const std::string& url, const std::string& stream) {
  auto u = buffer::ParseRedisUrl(url);  // checked by ParseUnits
  return "redis:" + u->host + ":" + std::to_string(u->port) + "/" + std::to_string(u->db) + "/" +
         stream;
}

// DATA_DIR/node-id, created on first use: HOSTNAME-<8 random hex digits>. Names this node
// where several share a Redis or a PostgreSQL (its Redis consumer, its spill shard).
Result<std::string> NodeId(const std::filesystem::path& data_dir) {
  const std::filesystem::path path = data_dir / "node-id";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return id;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) std::snprintf(host, 5, "node");
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(rd()));
  const std::string id = std::string(host) + "-" + suffix;
  const std::filesystem::path tmp = data_dir / "node-id.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) return Status::IOError("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot write " + path.string() + ": " + ec.message());
  return id;
}
std::filesystem::path ShardDir(const std::filesystem::path& data_dir, int i) {
  return data_dir / (i == 0 ? "buffer" : "buffer-" + std::to_string(i));
}

}  // namespace

int OpenCore(const ServeConfig& config, const Parsed& parsed, Core* core) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return ConfigError("cannot create data dir " + config.data_dir + ": " + ec.message());
  core->data_dir = std::filesystem::absolute(config.data_dir).lexically_normal();
  if (Status st = core->lock.Acquire(core->data_dir); !st.ok()) return ConfigError(st.message());

  auto node = NodeId(core->data_dir);
  if (!node.ok()) {
    spdlog::error("{}", node.status().ToString());
    return 1;
  }
  core->node_id = *node;

  // Shards beyond --buffer-shards left by an earlier run are opened too, so their records
  // are loaded; only the first buffer_shards take appends.
  const bool redis = !parsed.redis_urls.empty();
  int shard_count = parsed.buffer_shards;
  if (config.buffer == "disk") {
    while (std::filesystem::exists(ShardDir(core->data_dir, shard_count))) ++shard_count;
  }
  auto open_failed = [](const Status& st) {
    if (st.code() == StatusCode::kInvalidArgument) return ConfigError(st.message());
    spdlog::error("cannot open the buffer: {}", st.ToString());
    return 1;
  };
  std::vector<buffer::Buffer*> routed;
  for (int i = 0; i < shard_count; ++i) {
    buffer::BufferConfig bc;
    bc.kind = redis ? parsed.redis_urls[i] : config.buffer;
    bc.dir = ShardDir(core->data_dir, i).string();
    bc.max_bytes = parsed.buffer_max_bytes / uint64_t(parsed.buffer_shards);
    bc.segment_bytes = parsed.buffer_segment_bytes;
    bc.fsync = config.buffer_fsync;
    bc.redis_stream = config.redis_stream;
    bc.redis_group = config.redis_group;
    bc.redis_consumer = config.redis_consumer.empty() ? core->node_id : config.redis_consumer;
    bc.redis_claim_after = parsed.redis_claim_after;
    bc.redis_wait_replicas = config.redis_wait;
    bc.redis_wait_timeout = parsed.redis_wait_timeout;
    auto buffer_or = buffer::MakeBuffer(bc);
    if (!buffer_or.ok()) return open_failed(buffer_or.status());
    Shard shard;
    shard.name = redis ? RedisShardName(parsed.redis_urls[i], config.redis_stream) : ShardName(i);
    shard.buffer = std::move(buffer_or).value();
    const bool takes_appends = redis ? config.redis_write_shard < 0 || config.redis_write_shard == i
                                     : i < parsed.buffer_shards;
    if (takes_appends) routed.push_back(shard.buffer.get());
    core->shards.push_back(std::move(shard));
  }
  if (shard_count > parsed.buffer_shards) {
    spdlog::warn(
        "{} buffer shards on disk but --buffer-shards {}: the extra ones are drained "
        "and take no new events",
        shard_count, parsed.buffer_shards);
  }
  // The spill log: taken when asked for, and opened (to be drained) whenever it exists.
  const std::filesystem::path spill_dir = core->data_dir / "spill";
  if (redis && (config.spill == "disk" || std::filesystem::exists(spill_dir))) {
    buffer::BufferConfig bc;
    bc.kind = "disk";
    bc.dir = spill_dir.string();
    bc.max_bytes = parsed.buffer_max_bytes;
    bc.segment_bytes = parsed.buffer_segment_bytes;
    bc.fsync = config.buffer_fsync;
    auto spill_or = buffer::MakeBuffer(bc);
    if (!spill_or.ok()) return open_failed(spill_or.status());
    Shard shard;
    shard.name = "spill:" + core->node_id;
    shard.buffer = std::move(spill_or).value();
    if (config.spill == "disk") core->spill = shard.buffer.get();
    core->shards.push_back(std::move(shard));
  }
  core->router = std::make_unique<buffer::ShardRouter>(std::move(routed), core->spill);
  if (!config.buffer_fsync && config.buffer == "disk") {
    spdlog::warn("--buffer-fsync=false: acknowledged events may be lost if the machine crashes");
  }
  if (redis) {
    spdlog::info("buffer: Redis Streams {} on {} server(s), consumer {} in group {}{}",
                 config.redis_stream, parsed.redis_urls.size(),
                 config.redis_consumer.empty() ? core->node_id : config.redis_consumer,
                 config.redis_group, core->spill ? ", spilling to DATA_DIR/spill" : "");
  }

  std::string object_url = config.object_store.empty()
                               ? "file://" + (core->data_dir / "objects").string()
                               : config.object_store;
  objstore::ObjectStoreOptions oo;
  oo.endpoint = config.object_store_endpoint;
  oo.region = config.object_store_region;
  oo.multipart_threshold = parsed.object_store_multipart_threshold;
  oo.part_size = parsed.object_store_part_size;
  oo.parallel_parts = config.object_store_parallel;
  auto objects_or = objstore::MakeObjectStore(object_url, oo);
  if (!objects_or.ok()) {
    if (objects_or.status().code() == StatusCode::kInvalidArgument) {
      return ConfigError(objects_or.status().message());
    }
    spdlog::error("cannot open the object store: {}", objects_or.status().ToString());
    return 1;
  }
  core->objects = std::move(objects_or).value();
  // Where DuckDB reads the Parquet history: the store's own directory, or for a bucket the
  // local cache of it.
  std::string events_root;
  std::string objects_root;
  if (std::optional<std::string> local = core->objects->LocalPath("events")) {
    events_root = *local;
    objects_root = std::filesystem::path(*local).parent_path().string();
  } else {
    history::HistoryCacheOptions ho;
    ho.dir = (core->data_dir / "cache").string();
    ho.max_bytes = parsed.history_cache_bytes;
    ho.parallel_fetches = config.history_fetch_parallel;
    ho.manifest_refresh = parsed.history_manifest_refresh;
    ho.on_first_file = [core] { return core->duck ? core->duck->RefreshView() : Status::OK(); };
    auto cache_or = history::HistoryCache::Open(std::move(ho), core->objects.get());
    if (!cache_or.ok()) {
      if (cache_or.status().code() == StatusCode::kInvalidArgument) {
        return ConfigError(cache_or.status().message());
      }
      spdlog::error("cannot open the history cache: {}", cache_or.status().ToString());
      return 1;
    }
    core->history = std::move(cache_or).value();
    events_root = core->history->EventsDir();
    objects_root = (core->data_dir / "cache").string();
  }

  const int64_t window_us = parsed.export_interval.count() * 1000;
  const std::string parquet_glob = events_root + "/**/*.parquet";
  store::DuckDbStoreOptions so;
  // With PostgreSQL this database holds no rows: its `events` view is the Parquet history.
  so.path = (core->data_dir / (parsed.postgres ? "history.duckdb" : "hot.duckdb")).string();
  so.window_us = window_us;
  so.parquet_glob = parquet_glob;
  so.sandbox.allowed_directories = {core->data_dir.string(), objects_root};
  so.sandbox.memory_limit = config.duckdb_memory_limit;
  so.threads = config.duckdb_threads;
  so.checkpoint_threshold = std::to_string(parsed.duckdb_checkpoint_threshold) + " bytes";
  so.export_memory_limit = config.duckdb_memory_limit;
  so.export_tmp_dir = (core->data_dir / "export-tmp").string();
  auto duck_or = store::DuckDbStore::Open(so);
  if (!duck_or.ok()) {
    spdlog::error("cannot open the hot store: {}", duck_or.status().ToString());
    return 1;
  }
  core->duck = std::move(duck_or).value();
  core->store = core->duck.get();
  if (parsed.postgres) {
    store::PostgresStoreOptions po;
    po.url = config.store;
    po.read_url = config.store_read;
    po.window_us = window_us;
    po.partition_us = parsed.pg_partition.count() * 1000;
    po.partitions_ahead = config.pg_partitions_ahead;
    po.analyze_after_rows = config.pg_analyze_after_rows;
    po.parquet_glob = parquet_glob;
    po.tmp_dir = (core->data_dir / "export-tmp").string();
    po.duckdb_memory_limit = config.duckdb_memory_limit;
    po.replica_wait_us = parsed.replica_wait.count() * 1000;
    auto pg_or = store::PostgresStore::Open(po);
    if (!pg_or.ok()) {
      if (pg_or.status().code() == StatusCode::kInvalidArgument) {
        return ConfigError(pg_or.status().message());
      }
      spdlog::error("cannot open the PostgreSQL hot store: {}", pg_or.status().ToString());
      return 1;
    }
    core->postgres = std::move(pg_or).value();
    core->store = core->postgres.get();
  }

  for (Shard& shard : core->shards) {
    loader::LoaderOptions lo;
    lo.shard = shard.name;
    lo.max_batch_records = parsed.loader_batch_events;
    lo.max_batch_delay = parsed.loader_batch_delay;
    lo.dedup_window = parsed.dedup_window;
    lo.dedup_max_ids = config.dedup_max_ids;
    shard.loader = std::make_unique<loader::Loader>(lo, shard.buffer.get(), core->store);
  }

  exporter::ExporterOptions eo;
  eo.window_us = window_us;
  eo.grace_us = parsed.export_grace.count() * 1000;
  eo.spread = config.export_spread;
  eo.hot_retention_us = parsed.hot_retention.count() * 1000;
  eo.shard = parsed.postgres ? "pg" : "disk";
  eo.tmp_dir = (core->data_dir / "export-tmp").string();
  eo.poll_us = std::min<int64_t>(window_us, 10'000'000) / 2;
  if (core->history) {
    history::HistoryCache* cache = core->history.get();
    // Placing the file spares a download; failing to (the local disk full) must not hold the
    // export back, so it is only reported (a query fetches the file instead).
    eo.on_uploaded = [cache](const exporter::ManifestEntry& entry, const std::string& file) {
      if (Status st = cache->AddExported(entry, file); !st.ok()) {
        spdlog::warn("history cache: keeping the exported {}: {}", entry.key, st.ToString());
      }
      return Status::OK();
    };
  }
  if (parsed.postgres) {
    // The DuckDB engine's view must see the files PostgresStore's windows become.
    store::DuckDbStore* history = core->duck.get();
    eo.on_exported = [history](const exporter::WindowExport&) {
      if (Status st = history->RefreshView(); !st.ok()) {
        spdlog::warn("exporter: refreshing the history view: {}", st.ToString());
      }
    };
  }
  core->exporter = std::make_unique<exporter::Exporter>(eo, core->store, core->objects.get(),
                                                        [core] { return core->Watermark(); });
  return 0;
}

}  // namespace sluice::cli
