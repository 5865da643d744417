#include "store/parquet_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/temp_dir.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;

// A Fill of `total` rows, in chunks of up to `chunk` rows: event_id "e<i>", received_at i µs,
// properties {"i":<i>}, user_id NULL on odd rows; the other columns constant or NULL.
class RowsFill {
 public:
  RowsFill(uint64_t total, uint64_t chunk) : total_(total), chunk_(chunk) {}
  Status operator()(duckdb_data_chunk out) {
    const uint64_t n = std::min(chunk_, total_ - next_);
    duckdb_vector v[kParquetEventColumns];
    for (int c = 0; c < kParquetEventColumns; ++c) {
      v[c] = duckdb_data_chunk_get_vector(out, static_cast<idx_t>(c));
      duckdb_vector_ensure_validity_writable(v[c]);
    }
    for (uint64_t r = 0; r < n; ++r, ++next_) {
      const std::string id = "e" + std::to_string(next_);
      const std::string props = "{\"i\":" + std::to_string(next_) + "}";
      duckdb_vector_assign_string_element_len(v[0], r, id.data(), id.size());
      duckdb_vector_assign_string_element(v[1], r, "track");
      duckdb_vector_assign_string_element(v[2], r, "Viewed");
      if (next_ % 2 == 1) {
        duckdb_validity_set_row_invalid(duckdb_vector_get_validity(v[3]), r);
      } else {
        duckdb_vector_assign_string_element(v[3], r, "u");
      }
      for (int c : {4, 9, 10}) duckdb_validity_set_row_invalid(duckdb_vector_get_validity(v[c]), r);
      for (int c : {5, 6, 7}) {
        static_cast<int64_t*>(duckdb_vector_get_data(v[c]))[r] = static_cast<int64_t>(next_);
      }
      duckdb_vector_assign_string_element_len(v[8], r, props.data(), props.size());
      duckdb_vector_assign_string_element(v[11], r, "test");
    }
    duckdb_data_chunk_set_size(out, n);
    return Status::OK();
  }

 private:
  const uint64_t total_;
  const uint64_t chunk_;
  uint64_t next_ = 0;
};

class ParquetWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = ParquetWriter::Open({});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    writer_ = std::move(w).value();
    auto db = duck::Database::Open("");
    ASSERT_TRUE(db.ok());
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok());
    reader_ = std::move(conn).value();
  }
  std::string Text(const std::string& sql) {
    auto r = reader_->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->String(0, 0) : "";
  }
  std::string Path(const std::string& name) { return tmp_.path() + "/" + name; }

  testing::TempDir tmp_;
  std::unique_ptr<ParquetWriter> writer_;
  std::unique_ptr<duck::Connection> reader_;
};

TEST_F(ParquetWriterTest, WritesEveryRowWithTheEventSchemaAndRowGroups) {
  ParquetOptions o;
  o.row_group_rows = 4096;
  RowsFill fill(10000, 2048);
  auto rows = writer_->Write(Path("w.parquet"), o, std::ref(fill));
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 10000u);
  const std::string file = "read_parquet(" + duck::QuoteLiteral(Path("w.parquet")) + ")";
  EXPECT_EQ(Text("SELECT count(*) FROM " + file), "10000");
  EXPECT_EQ(Text("SELECT count(DISTINCT event_id) FROM " + file), "10000");
  EXPECT_EQ(Text("SELECT count(user_id) FROM " + file), "5000");
  EXPECT_EQ(Text("SELECT sum(epoch_us(received_at)) FROM " + file), "49995000");
  EXPECT_EQ(Text("SELECT sum(CAST(properties->>'i' AS BIGINT)) FROM " + file), "49995000");
  EXPECT_EQ(Text("SELECT count(*) FROM " + file + " WHERE traits IS NULL AND context IS NULL"),
            "10000");
  EXPECT_EQ(Text("SELECT string_agg(column_name || ' ' || column_type, ', ') FROM "
                 "(DESCRIBE SELECT * FROM " +
                 file + ")"),
            "event_id VARCHAR, type VARCHAR, event VARCHAR, user_id VARCHAR, anonymous_id "
            "VARCHAR, event_time TIMESTAMP WITH TIME ZONE, sent_at TIMESTAMP WITH TIME ZONE, "
            "received_at TIMESTAMP WITH TIME ZONE, properties JSON, traits JSON, context JSON, "
            "source VARCHAR");
  EXPECT_EQ(Text("SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata(" +
                 duck::QuoteLiteral(Path("w.parquet")) + ")"),
            "ZSTD");
  // Row groups of 4096: 4096, 4096, 1808.
  EXPECT_EQ(Text("SELECT count(DISTINCT row_group_id) FROM parquet_metadata(" +
                 duck::QuoteLiteral(Path("w.parquet")) + ")"),
            "3");
}

TEST_F(ParquetWriterTest, PaceIsCalledAfterEveryChunkWithTheRowsSoFar) {
  ParquetOptions o;
  std::vector<uint64_t> seen;
  o.pace = [&](uint64_t rows_so_far) { seen.push_back(rows_so_far); };
  RowsFill fill(5000, 1000);
  auto rows = writer_->Write(Path("p.parquet"), o, std::ref(fill));
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(seen, (std::vector<uint64_t>{1000, 2000, 3000, 4000, 5000}));
}

TEST_F(ParquetWriterTest, AFailingFillFailsTheWriteWithItsErrorAndLeavesNoFile) {
  RowsFill rows(10000, 2048);
  int calls = 0;
  auto rows_or = writer_->Write(Path("f.parquet"), {}, [&](duckdb_data_chunk out) -> Status {
    if (++calls == 3) return Status::Corruption("row 4097 is broken");
    return rows(out);
  });
  ASSERT_FALSE(rows_or.ok());
  EXPECT_EQ(rows_or.status().code(), StatusCode::kCorruption) << rows_or.status().ToString();
  EXPECT_NE(rows_or.status().message().find("row 4097 is broken"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("f.parquet")));
  // The writer is usable again, and its rows count starts from zero.
  RowsFill again(100, 2048);
  auto ok = writer_->Write(Path("g.parquet"), {}, std::ref(again));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, 100u);
}

TEST_F(ParquetWriterTest, AnUnwritablePathIsAnError) {
  RowsFill fill(10, 2048);
  auto rows = writer_->Write(Path("no/such/dir/x.parquet"), {}, std::ref(fill));
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("no/such/dir"), std::string::npos)
      << rows.status().ToString();
}

TEST_F(ParquetWriterTest, AnEmptySourceWritesAnEmptyFile) {
  RowsFill fill(0, 2048);
  auto rows = writer_->Write(Path("e.parquet"), {}, std::ref(fill));
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 0u);
  EXPECT_EQ(
      Text("SELECT count(*) FROM read_parquet(" + duck::QuoteLiteral(Path("e.parquet")) + ")"),
      "0");
}

}  // namespace
}  // namespace sluice::store
