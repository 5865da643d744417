#include "store/parquet_writer.h"

#include <filesystem>
#include <utility>
#include <vector>

namespace sluice::store {

struct ParquetWriter::Active {
  const Fill* fill = nullptr;  // null outside a Write
  std::function<void(uint64_t)> pace;
  uint64_t rows = 0;
  Status error;  // fill's first failure (DuckDB gets a copy of its message)
};

namespace {

void Bind(duckdb_bind_info info) {
  duckdb_logical_type text = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_logical_type json = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_logical_type_set_alias(json, "JSON");
  duckdb_logical_type time = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP_TZ);
  const std::pair<const char*, duckdb_logical_type> columns[kParquetEventColumns] = {
      {"event_id", text},     {"type", text},       {"event", text},   {"user_id", text},
      {"anonymous_id", text}, {"event_time", time}, {"sent_at", time}, {"received_at", time},
      {"properties", json},   {"traits", json},     {"context", json}, {"source", text}};
  for (const auto& [name, type] : columns) duckdb_bind_add_result_column(info, name, type);
  duckdb_destroy_logical_type(&text);
  duckdb_destroy_logical_type(&json);
  duckdb_destroy_logical_type(&time);
}

// The source is one stream, read on one thread.
void Init(duckdb_init_info info) { duckdb_init_set_max_threads(info, 1); }

}  // namespace

ParquetWriter::ParquetWriter() : active_(std::make_unique<Active>()) {}
ParquetWriter::~ParquetWriter() = default;

Result<std::unique_ptr<ParquetWriter>> ParquetWriter::Open(const Options& options) {
  // One thread: the Parquet encoding and zstd run on the exporting thread only, and the other
  // core is left to ingest. (With two, some paced PostgreSQL exports of the seed ramp cost 0.88
  // of a core on two threads against 0.21 on one: most likely DuckDB's worker ran the scan
  // while the calling thread kept polling the executor for work; BENCHMARKS.md, seed workload.)
  std::vector<std::pair<std::string, std::string>> config = {
      {"threads", "1"}, {"memory_limit", options.memory_limit}};
  if (!options.tmp_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.tmp_dir, ec);
    if (ec) return Status::IOError("creating " + options.tmp_dir + ": " + ec.message());
    config.emplace_back("temp_directory", options.tmp_dir);
  }
  auto w = std::unique_ptr<ParquetWriter>(new ParquetWriter());
  SLUICE_ASSIGN_OR_RETURN(w->db_, duck::Database::Open(":memory:", config));
  SLUICE_ASSIGN_OR_RETURN(w->conn_, duck::Connection::Open(w->db_));
  SLUICE_RETURN_IF_ERROR(w->conn_->Exec("SET GLOBAL TimeZone = 'UTC'"));
  duckdb_table_function tf = duckdb_create_table_function();
  duckdb_table_function_set_name(tf, "sluice_export_rows");
  duckdb_table_function_set_extra_info(tf, w->active_.get(), nullptr);
  duckdb_table_function_set_bind(tf, Bind);
  duckdb_table_function_set_init(tf, Init);
  duckdb_table_function_set_function(tf, Scan);
  const duckdb_state reg = duckdb_register_table_function(w->conn_->get(), tf);
  duckdb_destroy_table_function(&tf);
  if (reg != DuckDBSuccess) return Status::Internal("registering DuckDB's sluice_export_rows()");
  return w;
}

void ParquetWriter::Scan(duckdb_function_info info, duckdb_data_chunk output) {
  auto* a = static_cast<Active*>(duckdb_function_get_extra_info(info));
  auto fail = [&](Status st) {
    if (a->error.ok()) a->error = st;
    duckdb_function_set_error(info, st.ToString().c_str());
    duckdb_data_chunk_set_size(output, 0);
  };
  if (a->fill == nullptr) {
    return fail(Status::Internal("sluice_export_rows() used outside a Write"));
  }
  if (Status st = (*a->fill)(output); !st.ok()) return fail(std::move(st));
  const idx_t n = duckdb_data_chunk_get_size(output);
  a->rows += n;
  if (a->pace && n > 0) a->pace(a->rows);
}

Result<uint64_t> ParquetWriter::Write(const std::string& path, const ParquetOptions& options,
                                      const Fill& fill) {
  *active_ = Active{};
  active_->fill = &fill;
  active_->pace = options.pace;
  auto r = conn_->Query("COPY (SELECT * FROM sluice_export_rows()) TO " + duck::QuoteLiteral(path) +
                        " (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL " +
                        std::to_string(options.zstd_level) + ", ROW_GROUP_SIZE " +
                        std::to_string(options.row_group_rows) + ")");
  Status error = std::move(active_->error);
  *active_ = Active{};
  if (!error.ok() || !r.ok()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return error.ok() ? r.status() : error;
  }
  return static_cast<uint64_t>(r->Int64(0, 0));
}

}  // namespace sluice::store
