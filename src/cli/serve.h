// `sluice serve`: runs every role in one process. ServeConfig is what flags, SLUICE_*
// environment variables and the TOML config file set (serve_command.cc binds them);
// RunServe wires the components, serves until SIGINT/SIGTERM, then shuts down gracefully:
// stop accepting, finish requests in flight, flush the buffer, exit 0.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace sluice::cli {

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./sluice-data";
  std::string buffer = "disk";  // disk | memory | redis://…[,redis://…] (one shard per URL)
  std::string buffer_max_bytes = "8GiB";
  std::string buffer_segment_bytes = "64MiB";
  int buffer_shards = 0;  // independent buffers, one loader each; 0 = automatic (1 for DuckDB)
  bool buffer_fsync = true;
  // Redis Streams buffer (issue 5; buffer/redis_streams.h).
  std::string redis_stream = "sluice:events";
  std::string redis_group = "sluice";
  std::string redis_consumer;            // default: this node's id (DATA_DIR/node-id)
  std::string redis_claim_after = "30s";  // lease TTL: a dead loader's stream is claimed after it
  int redis_wait = 0;                    // WAIT for this many replicas before acknowledging
  std::string redis_wait_timeout = "1s";
  int redis_write_shard = -1;            // -1: spread appends over every URL; K: only URL K
  std::string spill = "none";            // none | disk: Redis refuses -> DATA_DIR/spill
  int threads = 0;  // HTTP I/O threads; 0 = one per core
  // serve: nice increment of the loader, exporter, query and DuckDB threads (0..19; 0 = off)
  int background_nice = 10;
  std::string max_body_bytes = "4MiB";
  std::string max_event_bytes = "32KiB";
  size_t max_batch_events = 10'000;
  std::string read_timeout = "10s";
  std::string idle_timeout = "60s";
  std::string shutdown_grace = "10s";
  std::vector<std::string> write_keys;  // NAME:SECRET
  std::vector<std::string> read_keys;   // NAME:SECRET
  double rate_limit = 0;  // events/s per write key; 0 = unlimited
  double rate_burst = 0;  // 0 = one second's worth
  std::string log_level = "info";
  bool noop_route = false;

  // Hot store, loader, exporter, query (issue 3).
  std::string store = "duckdb";  // duckdb | postgres://… (postgresql://… too)
  std::string store_read;        // postgres: a streaming replica for exports and queries
  std::string pg_partition = "1h";    // postgres: length of one `events` partition
  int pg_partitions_ahead = 2;        // postgres: partitions created ahead of the newest data
  int64_t pg_analyze_after_rows = 10'000;  // postgres: ANALYZE a partition at this many rows
  std::string replica_wait = "60s";   // postgres: how long an export waits for replica replay
  bool query_allow_privileged_role = false;  // postgres: development only (see README)
  std::string object_store;  // default file://DATA_DIR/objects; s3://…, az://…
  // Remote object stores (issue 6): overrides of the environment's settings, and transfers.
  std::string object_store_endpoint;  // S3-compatible (MinIO, R2, GCS) or Azure blob endpoint
  std::string object_store_region;    // S3 signing region (default AWS_REGION)
  std::string object_store_multipart_threshold = "64MiB";
  std::string object_store_part_size = "16MiB";
  int object_store_parallel = 4;
  // The local cache of history fetched from a remote store (DATA_DIR/cache).
  std::string history_cache_bytes = "10GiB";
  int history_fetch_parallel = 4;
  std::string history_manifest_refresh = "1m";  // list the bucket's manifest again this often
  std::string export_interval = "10m";
  std::string export_grace = "30s";
  // Share of --export-interval a window's export is spread over (either store; 0 = off).
  double export_spread = 0.5;
  std::string hot_retention = "2h";
  std::string dedup_window = "10m";
  size_t dedup_max_ids = 5'000'000;
  bool loader = true;  // false: events are buffered but not loaded (maintenance, benchmarks)
  size_t loader_batch_events = 0;  // 0 = automatic: 122,880 for DuckDB, 20,000 for PostgreSQL
  std::string loader_batch_delay = "200ms";
  std::string query_timeout = "30s";
  uint64_t query_max_rows = 100'000;
  std::string duckdb_memory_limit = "4GB";
  int duckdb_threads = 0;  // DuckDB worker threads of the hot store database; 0 = one per core
  // DuckDB's WAL size that makes a commit checkpoint (store::DuckDbStoreOptions).
  std::string duckdb_checkpoint_threshold = "1GB";
  // How often the data dir's files (DuckDB's, the export's) are pushed to the disk
  // (WritebackPacer); "0" = off.
  std::string writeback_pace = "100ms";
  int query_connections = 2;
};

// Binds every ServeConfig field to a flag of `cmd`, its SLUICE_* environment variable and
// its key in the --config file (applied by the subcommand's callback with ApplyConfigFile).
// Returns the --config option's target.
std::shared_ptr<std::string> BindServeFlags(CLI::App* cmd, ServeConfig* cfg);

// Returns the process exit code: 0 after a clean shutdown, 2 with a sentence on stderr for a
// configuration the operator must fix, 1 for a failure at run time.
int RunServe(const ServeConfig& config);

// `sluice export --once`: with the server stopped, loads what the buffer holds into the hot
// store, then exports every window whose end the data has passed (no grace) and applies the
// retention. Same exit codes as RunServe.
int RunExportOnce(const ServeConfig& config);

}  // namespace sluice::cli
