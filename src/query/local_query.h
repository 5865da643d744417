// RunLocalQuery: `sluice query --data-dir DIR` — runs one query on a data dir's hot store
// without a server, with the same sandbox and limits as POST /v1/query.
//
// It opens DATA_DIR/hot.duckdb READ_ONLY (DuckDB then refuses every write at the storage level
// too), sets the session time zone to UTC, applies duck::ApplySandbox with the data dir and the
// object store's directory as the only readable places, and runs the SQL through a one-worker
// QueryEngine.
//
// A running `sluice serve` holds the data dir (DATA_DIR/LOCK, and DuckDB's lock on the file);
// then this refuses with FailedPrecondition "the data dir … is in use by a running sluice; use
// --server http://ADDR" (ADDR from DATA_DIR/serve.addr when present).
//
// Concurrency: a function; it opens and closes its own database.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "query/history_gate.h"
#include "query/query_engine.h"

namespace sluice::query {

struct LocalQuery {
  std::string data_dir;
  std::string objects_dir;  // the object store's local root; "" = DATA_DIR/objects
  // With a remote object store: opens the history cache of DATA_DIR (called once the data dir
  // is known not to be in use; it is held with a shared lock meanwhile, so no server starts).
  std::function<Result<std::unique_ptr<HistoryGate>>()> open_history;
  std::string sql;
  QueryOptions options;  // connections is ignored (one)
  std::string memory_limit = "4GB";
};

// The result, or: NotFound when DATA_DIR/hot.duckdb does not exist, FailedPrecondition when a
// server holds the data dir, IOError when DuckDB cannot open it, and Execute()'s errors.
Result<QueryResultJson> RunLocalQuery(const LocalQuery& query);

}  // namespace sluice::query
