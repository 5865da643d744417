#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/serve.h"

namespace sluice::cli {

std::shared_ptr<std::string> BindServeFlags(CLI::App* cmd, ServeConfig* cfg) {
  // Every flag: --flag, SLUICE_FLAG in the environment, `flag = …` in the TOML config file.
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path,
                  "TOML config file; keys are the flag names, e.g. listen = \"127.0.0.1:8080\"")
      ->envname("SLUICE_CONFIG");
  auto opt = [&](const std::string& name, auto* target, const std::string& help) {
    std::string env = "SLUICE_";
    for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return cmd->add_option("--" + name, *target, help)->envname(env)->capture_default_str();
  };
  opt("listen", &cfg->listen, "Address to listen on, HOST:PORT (port 0 picks a free one)");
  opt("data-dir", &cfg->data_dir, "Directory for the buffer, the hot store and local exports");
  opt("buffer", &cfg->buffer,
      "Buffer: disk (durable segment log), memory (loses data on crash), or Redis Streams: "
      "redis://[:PASSWORD@]HOST:PORT[/DB], comma-separated for several shards");
  opt("buffer-max-bytes", &cfg->buffer_max_bytes,
      "Cap on buffer bytes; beyond it ingest answers 503");
  opt("buffer-segment-bytes", &cfg->buffer_segment_bytes, "Size of one buffer segment file");
  opt("buffer-shards", &cfg->buffer_shards,
      "Independent buffer shards, each loaded by its own loader in parallel (0 = automatic: 1 "
      "for DuckDB); --buffer-max-bytes is split between them");
  opt("buffer-fsync", &cfg->buffer_fsync,
      "fsync before acknowledging (false only for benchmarks: acknowledged events may be lost)");
  opt("redis-stream", &cfg->redis_stream, "Redis: the stream key on every --buffer server");
  opt("redis-group", &cfg->redis_group, "Redis: the consumer group the loaders read through");
  opt("redis-consumer", &cfg->redis_consumer,
      "Redis: this process's consumer name (default: the node id in DATA_DIR/node-id)");
  opt("redis-claim-after", &cfg->redis_claim_after,
      "Redis: a loader silent this long loses its stream; another claims its pending entries");
  opt("redis-wait", &cfg->redis_wait,
      "Redis: acknowledge only after this many replicas have the events (WAIT); 0 = the "
      "primary's answer");
  opt("redis-wait-timeout", &cfg->redis_wait_timeout,
      "Redis: how long WAIT waits; fewer replicas by then answers 503");
  opt("redis-write-shard", &cfg->redis_write_shard,
      "Redis: -1 spreads requests over every --buffer URL; K writes only to the K-th (0-based: "
      "the Redis paired with this server)");
  opt("spill", &cfg->spill,
      "none: a request Redis refuses (down, maxmemory) gets 503; disk: it goes to a local "
      "log (DATA_DIR/spill) that the loader loads, and is acknowledged");
  opt("threads", &cfg->threads, "HTTP I/O threads (0 = one per core)");
  opt("background-nice", &cfg->background_nice,
      "Nice increment (0-19; 0 = off) of the loader, exporter, query and DuckDB threads, so that "
      "on a busy machine the ingest path (HTTP threads, buffer writer) runs first");
  opt("max-body-bytes", &cfg->max_body_bytes, "Largest request body, before and after gzip");
  opt("max-event-bytes", &cfg->max_event_bytes, "Largest single event; larger ones are rejected");
  opt("max-batch-events", &cfg->max_batch_events, "Most events in one request body");
  opt("read-timeout", &cfg->read_timeout, "A started request must arrive whole within this");
  opt("idle-timeout", &cfg->idle_timeout, "Close keep-alive connections idle this long");
  opt("shutdown-grace", &cfg->shutdown_grace, "On SIGTERM, wait this long for requests in flight");
  opt("write-key", &cfg->write_keys, "Write key NAME:SECRET (repeatable; env: comma-separated)")
      ->delimiter(',');
  opt("read-key", &cfg->read_keys, "Read key NAME:SECRET (repeatable; env: comma-separated)")
      ->delimiter(',');
  opt("rate-limit", &cfg->rate_limit, "Events per second per write key (0 = unlimited)");
  opt("rate-burst", &cfg->rate_burst, "Token bucket size per key (0 = one second's worth)");
  opt("log-level", &cfg->log_level, "trace, debug, info, warn or error");
  cmd->add_flag("--noop-route", cfg->noop_route,
                "Serve POST /v1/noop (answers 200 and stores nothing): the HTTP ceiling for "
                "sluice bench")
      ->envname("SLUICE_NOOP_ROUTE");
  opt("store", &cfg->store,
      "Hot store: duckdb (a DuckDB file in the data dir) or postgres://USER@HOST:PORT/DB");
  opt("store-read", &cfg->store_read,
      "PostgreSQL streaming replica for exports and engine=postgres queries (default: the "
      "primary)");
  opt("pg-partition", &cfg->pg_partition,
      "Length of one PostgreSQL `events` partition: a whole multiple of --export-interval");
  opt("pg-partitions-ahead", &cfg->pg_partitions_ahead,
      "PostgreSQL partitions created ahead of the newest data");
  opt("pg-analyze-after-rows", &cfg->pg_analyze_after_rows,
      "ANALYZE a fresh PostgreSQL partition once this process has committed this many rows "
      "into it (0 = leave it to autovacuum, whose first ANALYZE may come a minute later)");
  opt("replica-wait", &cfg->replica_wait,
      "How long an export waits for the replica to replay the primary's last commit");
  opt("query-allow-privileged-role", &cfg->query_allow_privileged_role,
      "Development only: run engine=postgres queries even as a superuser or a role that can "
      "read server files (such a role can escape the read-only sandbox)");
  opt("object-store", &cfg->object_store,
      "Where closed windows go as Parquet: file://DIR (default DATA_DIR/objects), "
      "s3://BUCKET[/PREFIX] (AWS_* credentials) or az://CONTAINER[/PREFIX] (AZURE_STORAGE_*)");
  opt("object-store-endpoint", &cfg->object_store_endpoint,
      "S3-compatible endpoint (MinIO, R2, GCS: https://storage.googleapis.com), path-style; or "
      "the Azure blob endpoint (default: AWS_ENDPOINT_URL, or the connection string's)");
  opt("object-store-region", &cfg->object_store_region, "S3 signing region (default: AWS_REGION)");
  opt("object-store-multipart-threshold", &cfg->object_store_multipart_threshold,
      "Files larger than this are uploaded in parts (S3) or blocks (Azure)");
  opt("object-store-part-size", &cfg->object_store_part_size,
      "Size of one part or block (S3: at least 5MiB)");
  opt("object-store-parallel", &cfg->object_store_parallel,
      "Parts or blocks of one file uploaded at once");
  opt("history-cache-bytes", &cfg->history_cache_bytes,
      "With s3:// or az://: the local cache of Parquet history that queries read "
      "(DATA_DIR/cache), least recently used out");
  opt("history-fetch-parallel", &cfg->history_fetch_parallel,
      "With s3:// or az://: history files one query downloads at once");
  opt("history-manifest-refresh", &cfg->history_manifest_refresh,
      "With s3:// or az://: list the bucket's manifest again this often (windows exported by "
      "another process)");
  opt("export-interval", &cfg->export_interval, "Window length: one Parquet file per window");
  opt("export-grace", &cfg->export_grace,
      "A window closes once the loaded data is this far past its end (clock skew allowance)");
  opt("export-spread", &cfg->export_spread,
      "Spread each window's export over this share of "
      "--export-interval (0 = as fast as it goes, up to 1), so that it takes less CPU at once "
      "from the ingest path; a backlog of windows is exported at full speed");
  opt("hot-retention", &cfg->hot_retention,
      "Exported windows stay in the hot store this long, then are dropped");
  opt("dedup-window", &cfg->dedup_window, "Drop an event whose event_id was stored this recently");
  opt("dedup-max-ids", &cfg->dedup_max_ids, "Most event_ids remembered for dedup (~50 B each)");
  opt("loader", &cfg->loader,
      "Load the buffer into the hot store (false: only buffer, e.g. during maintenance)");
  opt("loader-batch-events", &cfg->loader_batch_events,
      "Most events per hot store commit (0 = automatic: 122880, one DuckDB row group; 20000 "
      "for PostgreSQL)");
  opt("loader-batch-delay", &cfg->loader_batch_delay,
      "Commit a batch at most this long after its first event (freshness)");
  opt("query-timeout", &cfg->query_timeout, "Stop a query running longer than this");
  opt("query-max-rows", &cfg->query_max_rows, "Refuse results with more rows than this");
  opt("duckdb-memory-limit", &cfg->duckdb_memory_limit,
      "Memory limit of the embedded DuckDB, and the same again of the export's own DuckDB");
  opt("duckdb-threads", &cfg->duckdb_threads,
      "Worker threads of the embedded DuckDB (queries, checkpoints); 0 = one per core");
  opt("duckdb-checkpoint-threshold", &cfg->duckdb_checkpoint_threshold,
      "Embedded DuckDB: the WAL size at which a commit checkpoints (compresses and writes the "
      "rows loaded since the last one); larger: fewer, longer pauses and more loader "
      "throughput; smaller: shorter pauses");
  opt("writeback-pace", &cfg->writeback_pace,
      "Start the disk writes of DuckDB's files and of window exports this often (0 = leave it "
      "to the kernel), so that a checkpoint or an export never flushes hundreds of MB at once "
      "and stalls the buffer's fsync that acknowledgements wait for");
  opt("query-connections", &cfg->query_connections, "Queries that may run at once");
  return config_path;
}

void SetupServe(CLI::App& app, int* exit_code) {
  auto cfg = std::make_shared<ServeConfig>();
  auto* cmd = app.add_subcommand("serve", "Run the HTTP ingest server and the pipeline");
  auto config_path = BindServeFlags(cmd, cfg.get());
  cmd->callback([cmd, cfg, config_path, exit_code] {
    if (!config_path->empty()) {
      if (Status st = ApplyConfigFile(cmd, *config_path); !st.ok()) {
        std::fprintf(stderr, "sluice serve: %s\n", st.message().c_str());
        *exit_code = 2;
        return;
      }
    }
    *exit_code = RunServe(*cfg);
  });
}

void SetupExport(CLI::App& app, int* exit_code) {
  auto cfg = std::make_shared<ServeConfig>();
  auto* cmd = app.add_subcommand(
      "export", "Export closed windows to the object store now (the server must be stopped)");
  auto once = std::make_shared<bool>(false);
  cmd->add_flag("--once", *once, "Load the buffer, export every closed window, then exit");
  auto config_path = BindServeFlags(cmd, cfg.get());
  cmd->callback([cmd, cfg, config_path, once, exit_code] {
    if (!*once) {
      std::fprintf(stderr, "sluice export: only --once is supported: `sluice export --once`\n");
      *exit_code = 2;
      return;
    }
    if (!config_path->empty()) {
      if (Status st = ApplyConfigFile(cmd, *config_path); !st.ok()) {
        std::fprintf(stderr, "sluice export: %s\n", st.message().c_str());
        *exit_code = 2;
        return;
      }
    }
    *exit_code = RunExportOnce(*cfg);
  });
}

}  // namespace sluice::cli
