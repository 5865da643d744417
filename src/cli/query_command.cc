// `sluice query [--server URL [--engine duckdb|postgres] | --data-dir DIR]
//               [--format table|csv|json] [--read-key KEY] SQL`
// Flags and environment variables → query/ (query_client.h over HTTP, local_query.h on a data
// dir), then query/result_format.h prints the result. SQL "-" is read from stdin.
// Exit codes: 0 ok, 1 the query was refused or failed, 2 bad flags.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/units.h"
#include "history/history_cache.h"
#include "objstore/object_store.h"
#include "query/local_query.h"
#include "query/query_client.h"
#include "query/result_format.h"

namespace sluice::cli {
namespace {

struct QueryFlags {
  std::string server;
  std::string data_dir = "./sluice-data";
  std::string object_store;  // file://DIR (default file://DATA_DIR/objects), s3://…, az://…
  std::string object_store_endpoint;
  std::string history_cache_bytes = "10GiB";
  std::string format = "table";
  std::string engine = "duckdb";
  std::string read_key;
  std::string query_timeout = "30s";
  uint64_t query_max_rows = 100'000;
  std::string duckdb_memory_limit = "4GB";
  std::string sql;
};

// The history cache of `data_dir` over `store` (which it then owns), as a HistoryGate.
class BucketHistory final : public query::HistoryGate {
 public:
  BucketHistory(std::unique_ptr<objstore::ObjectStore> store,
                std::unique_ptr<history::HistoryCache> cache)
      : store_(std::move(store)), cache_(std::move(cache)) {}
  Result<std::unique_ptr<query::HistoryLease>> Acquire(
      int64_t from_us, int64_t to_us, std::chrono::steady_clock::time_point deadline) override {
    return cache_->Acquire(from_us, to_us, deadline);
  }

 private:
  std::unique_ptr<objstore::ObjectStore> store_;  // before cache_: destroyed after it
  std::unique_ptr<history::HistoryCache> cache_;
};

Result<std::unique_ptr<query::HistoryGate>> OpenHistoryFromBucket(
    std::unique_ptr<objstore::ObjectStore> store, const std::string& data_dir, uint64_t bytes) {
  history::HistoryCacheOptions ho;
  ho.dir = (std::filesystem::path(data_dir) / "cache").string();
  ho.max_bytes = bytes;
  SLUICE_ASSIGN_OR_RETURN(auto cache, history::HistoryCache::Open(ho, store.get()));
  return std::unique_ptr<query::HistoryGate>(new BucketHistory(std::move(store), std::move(cache)));
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "sluice query: %s\n", message.c_str());
  return code;
}

int Run(const QueryFlags& f, bool server_mode) {
  // stdout carries the result: log (warnings only) to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_st("sluice-query"));
  spdlog::set_level(spdlog::level::warn);
  auto timeout = ParseDuration(f.query_timeout);
  if (!timeout.ok() || timeout->count() <= 0) {
    return Fail(2, "--query-timeout must be a duration such as 30s or 500ms (got '" +
                       f.query_timeout + "')");
  }
  if (f.query_max_rows == 0) return Fail(2, "--query-max-rows must be at least 1");
  if (!server_mode && f.engine != "duckdb") {
    return Fail(2, "--engine " + f.engine +
                       " needs --server URL: it runs on the server's PostgreSQL (--store-read); "
                       "--data-dir queries only the local DuckDB hot store and Parquet history");
  }
  std::string sql = f.sql;
  if (sql == "-") {
    sql.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (sql.find_first_not_of(" \t\r\n;") == std::string::npos) {
    return Fail(2, "no SQL given; pass it as the argument, or '-' to read it from stdin");
  }

  std::string json;
  if (server_mode) {
    query::ServerQuery q;
    q.server = f.server;
    q.sql = std::move(sql);
    q.read_key = f.read_key;
    q.engine = f.engine;
    // The server enforces its own --query-timeout; wait a little longer than ours for it.
    q.timeout = *timeout + std::chrono::seconds(30);
    auto r = query::PostQuery(q);
    if (!r.ok()) {
      bool bad_url = r.status().code() == StatusCode::kInvalidArgument &&
                     r.status().message().rfind("--server", 0) == 0;
      std::string hint;
      if (r.status().code() == StatusCode::kUnauthenticated) {
        hint = f.read_key.find(':') != std::string::npos
                   ? "; give --read-key only the SECRET part of the server's NAME:SECRET"
                   : "; pass a read key's secret with --read-key (or SLUICE_QUERY_READ_KEY)";
      }
      return Fail(bad_url ? 2 : 1, r.status().message() + hint);
    }
    json = std::move(r).value();
  } else {
    query::LocalQuery q;
    q.data_dir = f.data_dir;
    if (f.object_store.starts_with("s3://") || f.object_store.starts_with("az://")) {
      // History from the bucket, through DATA_DIR/cache as `sluice serve` does.
      auto bytes = ParseBytes(f.history_cache_bytes);
      if (!bytes.ok()) return Fail(2, "--history-cache-bytes: " + bytes.status().message());
      q.open_history = [&f, bytes = *bytes]() -> Result<std::unique_ptr<query::HistoryGate>> {
        objstore::ObjectStoreOptions oo;
        oo.endpoint = f.object_store_endpoint;
        auto store = objstore::MakeObjectStore(f.object_store, oo);
        if (!store.ok()) return store.status();
        return OpenHistoryFromBucket(std::move(store).value(), f.data_dir, bytes);
      };
    } else if (!f.object_store.empty()) {
      if (f.object_store.rfind("file://", 0) != 0 || f.object_store.size() <= 7) {
        return Fail(2, "--object-store " + f.object_store +
                           ": expected file:///DIR, s3://BUCKET[/PREFIX] or az://CONTAINER");
      }
      q.objects_dir = f.object_store.substr(7);
    }
    q.sql = std::move(sql);
    q.options.timeout = *timeout;
    q.options.max_rows = f.query_max_rows;
    q.memory_limit = f.duckdb_memory_limit;
    auto r = query::RunLocalQuery(q);
    if (!r.ok()) return Fail(1, r.status().message());
    json = std::move(r->json);
  }

  if (f.format == "json") {
    std::fwrite(json.data(), 1, json.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  auto text = f.format == "csv" ? query::FormatCsv(json) : query::FormatTable(json);
  if (!text.ok()) return Fail(1, text.status().message());
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}

}  // namespace

void SetupQuery(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<QueryFlags>();
  auto* cmd = app.add_subcommand(
      "query", "Run one read-only SQL query on the events (via a server, or on a data dir)");
  cmd->footer(
      "\nTables: events (the whole history), events_1m (per-minute counts), events_rejected.\n"
      "Example: sluice query --server http://127.0.0.1:8080 \\\n"
      "           \"SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC\"");
  cmd->add_option("--server", f->server,
                  "Send the query to a running sluice, e.g. http://127.0.0.1:8080 (takes "
                  "precedence over --data-dir)")
      ->envname("SLUICE_SERVER");
  cmd->add_option("--data-dir", f->data_dir,
                  "Without --server: query this data dir directly (no server may be running on "
                  "it); with a PostgreSQL hot store, its exported history only")
      ->envname("SLUICE_DATA_DIR")
      ->capture_default_str();
  cmd->add_option("--object-store", f->object_store,
                  "With --data-dir: the exported history, file://DIR (default "
                  "file://DATA_DIR/objects), or s3://BUCKET[/PREFIX] / az://CONTAINER[/PREFIX], "
                  "fetched into DATA_DIR/cache as the server does")
      ->envname("SLUICE_OBJECT_STORE");
  cmd->add_option("--object-store-endpoint", f->object_store_endpoint,
                  "With --data-dir and s3:// or az://: the endpoint (see sluice serve)")
      ->envname("SLUICE_OBJECT_STORE_ENDPOINT");
  cmd->add_option("--history-cache-bytes", f->history_cache_bytes,
                  "With --data-dir and s3:// or az://: the bound of DATA_DIR/cache")
      ->envname("SLUICE_HISTORY_CACHE_BYTES")
      ->capture_default_str();
  cmd->add_option("--engine", f->engine,
                  "With --server: duckdb (Parquet history and hot rows) or postgres (the "
                  "server's PostgreSQL hot store, on its --store-read replica)")
      ->check(CLI::IsMember({"duckdb", "postgres"}))
      ->envname("SLUICE_QUERY_ENGINE")
      ->capture_default_str();
  cmd->add_option("--format", f->format, "Output: table, csv or json (the API's JSON)")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--read-key", f->read_key,
                  "With --server: a read key's secret, sent as Authorization: Bearer")
      ->envname("SLUICE_QUERY_READ_KEY");
  cmd->add_option("--query-timeout", f->query_timeout,
                  "With --data-dir: stop the query after this long (the server has its own)")
      ->capture_default_str();
  cmd->add_option("--query-max-rows", f->query_max_rows,
                  "With --data-dir: refuse results with more rows than this")
      ->capture_default_str();
  cmd->add_option("--duckdb-memory-limit", f->duckdb_memory_limit,
                  "With --data-dir: DuckDB's memory limit")
      ->capture_default_str();
  cmd->add_option("sql", f->sql, "The SQL, or - to read it from stdin")->required();
  cmd->callback([f, exit_code] { *exit_code = Run(*f, !f->server.empty()); });
}

}  // namespace sluice::cli
