// ParquetWriter: writes a window's rows to a Parquet file through a private in-memory DuckDB
// with one thread, from rows the caller streams in chunk by chunk. Both hot stores export
// through it: PostgresStore fills chunks from the read replica's COPY stream, DuckDbStore hands
// over the chunks of a streaming scan of its window table.
//
// Why a second DuckDB for the embedded store too: a COPY in the hot database runs on all of
// its threads (1.5 of the 2 cores for 42-66 s per 3M rows in the seed ramp, with ingest
// starved meanwhile), and DuckDB's thread count is per database. Here the Parquet encoding
// and compression run on the exporting thread alone, and `ParquetOptions::pace` is called
// between chunks so that the export can be held to a rate.
//
// Not thread-safe: one Write at a time (the stores hold their export mutex).
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "duck/duck.h"
#include "store/hot_store.h"

namespace sluice::store {

// The columns a Fill produces, in this order, as DESIGN.md's Event table: event_id, type,
// event, user_id, anonymous_id VARCHAR; event_time, sent_at, received_at TIMESTAMPTZ;
// properties, traits, context JSON; source VARCHAR.
inline constexpr int kParquetEventColumns = 12;

class ParquetWriter {
 public:
  struct Options {
    std::string memory_limit = "1GB";  // of the private DuckDB
    std::string tmp_dir;               // where it may spill; empty: DuckDB's default
  };
  // Fills `out` (the columns above; room for duckdb_vector_size() rows) with the next rows
  // and sets its size; size 0 ends the file. An error ends the Write with that error.
  using Fill = std::function<Status(duckdb_data_chunk out)>;

  static Result<std::unique_ptr<ParquetWriter>> Open(const Options& options);
  ~ParquetWriter();
  ParquetWriter(const ParquetWriter&) = delete;
  ParquetWriter& operator=(const ParquetWriter&) = delete;

  // Writes the rows `fill` produces, on the calling thread, to a new file at `path` (zstd at
  // options.zstd_level, row groups of options.row_group_rows). Calls options.pace, when set,
  // after each chunk with the rows so far. Returns the rows written. On failure the file is
  // removed and the error is fill's own when fill failed.
  Result<uint64_t> Write(const std::string& path, const ParquetOptions& options, const Fill& fill);

  // The private DuckDB (no sandbox, one thread), for other work on the exporting side, e.g.
  // PostgresStore reading Parquet history back.
  // NOLINTNEXTLINE(readability-identifier-naming): an accessor, named as the field it returns
  std::shared_ptr<duck::Database> database() const { return db_; }

 private:
  struct Active;
  ParquetWriter();
  static void Scan(duckdb_function_info info, duckdb_data_chunk output);

  std::shared_ptr<duck::Database> db_;
  std::unique_ptr<duck::Connection> conn_;
  std::unique_ptr<Active> active_;  // the running Write's fill, rows, pace and first error
};

}  // namespace sluice::store
