// The HotStore contract (store/hot_store.h), run against every implementation: DuckDbStore
// (embedded) and PostgresStore (the real primary and replica of SLUICE_TEST_PG_URL and
// SLUICE_TEST_PG_REPLICA_URL; each test gets a fresh database). Only the interface is used,
// plus the tables both stores name alike (events_1m, events_rejected) and the Parquet files
// read back with DuckDB. Store-specific behaviour is in duckdb_store_test.cc and
// postgres_store_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "common/temp_dir.h"
#include "duck/duck.h"
#include "event/parser.h"
#include "pg/test_env.h"
#include "store/duckdb_store.h"
#include "store/hot_store.h"
#include "store/postgres_store.h"
#include "store/store_test_util.h"

namespace sluice::store {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // store_test_util.h

struct Params {
  int64_t window_us = kWindow;
  std::function<Status(std::string_view)> fault_injection;
};

// What one test's stores live in; kept across reopens.
struct Env {
  sluice::testing::TempDir tmp{"sluice-store-contract"};
  std::string data = tmp.path() + "/data";
  std::string objects = tmp.path() + "/objects";
  std::unique_ptr<pg::testing::TestDatabase> db;  // PostgresStore only
};

struct DuckKind {
  static constexpr bool kNeedsPostgres = false;
  static Result<std::unique_ptr<HotStore>> Open(Env& env, const Params& p) {
    DuckDbStoreOptions o;
    o.path = env.data + "/hot.duckdb";
    o.window_us = p.window_us;
    o.parquet_glob = env.objects + "/events/**/*.parquet";
    o.sandbox.allowed_directories = {env.data, env.objects};
    o.sandbox.memory_limit = "1GB";
    o.threads = 2;
    o.fault_injection = p.fault_injection;
    SLUICE_ASSIGN_OR_RETURN(auto s, DuckDbStore::Open(o));
    return std::unique_ptr<HotStore>(std::move(s));
  }
  // A one-number query on the store's own database.
  static int64_t Scalar(HotStore& store, Env&, const std::string& sql) {
    auto conn = duck::Connection::Open(static_cast<DuckDbStore&>(store).database());
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() ? r->Int64(0, 0) : -1;
  }
};

struct PostgresKind {
  static constexpr bool kNeedsPostgres = true;
  static Result<std::unique_ptr<HotStore>> Open(Env& env, const Params& p) {
    PostgresStoreOptions o;
    o.url = env.db->url();
    o.read_url = env.db->replica_url();
    o.window_us = p.window_us;
    o.parquet_glob = env.objects + "/events/**/*.parquet";
    o.tmp_dir = env.data + "/tmp";
    o.fault_injection = p.fault_injection;
    SLUICE_ASSIGN_OR_RETURN(auto s, PostgresStore::Open(o));
    return std::unique_ptr<HotStore>(std::move(s));
  }
  static int64_t Scalar(HotStore&, Env& env, const std::string& sql) {
    auto conn = pg::Connection::Open(env.db->url());
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return -1;
    auto r = (*conn)->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() ? *r->Int64(0, 0) : -1;
  }
};

template <typename Kind>
class HotStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(env_.data);
    fs::create_directories(env_.objects + "/events");
    if constexpr (Kind::kNeedsPostgres) {
      SLUICE_PG_URL_OR_SKIP(url, "SLUICE_TEST_PG_URL");
      SLUICE_PG_URL_OR_SKIP(replica, "SLUICE_TEST_PG_REPLICA_URL");
      env_.db = std::make_unique<pg::testing::TestDatabase>(url, replica);
      ASSERT_TRUE(env_.db->ok());
    }
    auto db = duck::Database::Open(":memory:");
    ASSERT_TRUE(db.ok());
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok());
    reader_ = std::move(*conn);
    ASSERT_TRUE(reader_->Exec("SET TimeZone = 'UTC'").ok());
  }

  std::unique_ptr<HotStore> Open(const Params& p = {}) {
    auto s = Kind::Open(env_, p);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  int64_t Scalar(HotStore& s, const std::string& sql) { return Kind::Scalar(s, env_, sql); }

  std::string ParquetPath(int64_t start_us) {
    return testing::ParquetPath(env_.objects, start_us);
  }

  // Exports window `start_us` to its place in the object store and returns the row count.
  uint64_t Export(HotStore& s, int64_t start_us, const ParquetOptions& o = {}) {
    auto rows = s.ExportWindowToParquet(start_us, ParquetPath(start_us), o);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : 0;
  }

  duck::QueryResult Read(const std::string& sql) {
    auto r = reader_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : duck::QueryResult();
  }
  // The event ids in a Parquet file.
  std::multiset<std::string> FileIds(const std::string& path) {
    auto r = Read("SELECT event_id FROM read_parquet(" + duck::QuoteLiteral(path) + ")");
    std::multiset<std::string> ids;
    for (uint64_t i = 0; i < r.rows(); ++i) ids.insert(r.String(0, i));
    return ids;
  }

  static std::multiset<std::string> HotIds(HotStore& s, int64_t since = 0) {
    std::multiset<std::string> ids;
    Status st = s.ForEachEventIdSince(since, [&](std::string_view id) { ids.emplace(id); });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return ids;
  }
  static std::vector<WindowInfo> WindowsOf(HotStore& s) {
    auto w = s.Windows();
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? *w : std::vector<WindowInfo>{};
  }

  Env env_;
  std::unique_ptr<duck::Connection> reader_;  // reads Parquet files
};

using Kinds = ::testing::Types<DuckKind, PostgresKind>;
class KindNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, DuckKind> ? "DuckDbStore" : "PostgresStore";
  }
};
TYPED_TEST_SUITE(HotStoreContractTest, Kinds, KindNames);

TYPED_TEST(HotStoreContractTest, AnEmptyStoreHasNothing) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->CommittedOffset("disk"), 0u);
  EXPECT_EQ(*store->MaxReceivedAt(), 0);
  EXPECT_TRUE(this->WindowsOf(*store).empty());
  EXPECT_TRUE(this->HotIds(*store).empty());
  EXPECT_EQ(store->ExportWindowToParquet(kW1, this->ParquetPath(kW1), {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store->MarkExported(kW1, 0).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DropWindow(kW1).code(), StatusCode::kNotFound);
  auto bytes = store->DiskBytes();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_GT(*bytes, 0u);
}

TYPED_TEST(HotStoreContractTest, OffsetsWindowsAndMaxSurviveReopen) {
  {
    auto store = this->Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->CommitBatch(EventsBatch(10, "a", 0, 3, kW1, kSecond)).ok());
    EXPECT_EQ(*store->CommittedOffset("disk"), 10u);
    ASSERT_TRUE(store->CommitBatch(EventsBatch(25, "b", 0, 2, kW2 + kSecond, kSecond)).ok());
    Batch other;
    other.shard = "redis-1";
    other.end_offset = 7;
    other.rejections.push_back({kW2 + 9 * kSecond, "web", "bad", "{"});
    ASSERT_TRUE(store->CommitBatch(other).ok());
    EXPECT_EQ(*store->CommittedOffset("disk"), 25u);
    EXPECT_EQ(*store->CommittedOffset("redis-1"), 7u);
    EXPECT_EQ(*store->CommittedOffset("nope"), 0u);
    EXPECT_EQ(*store->MaxReceivedAt(), kW2 + 9 * kSecond);  // rejections count too
  }
  auto store = this->Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->CommittedOffset("disk"), 25u);
  EXPECT_EQ(*store->CommittedOffset("redis-1"), 7u);
  EXPECT_EQ(*store->MaxReceivedAt(), kW2 + 9 * kSecond);
  std::vector<WindowInfo> want = {{kW1, kW1 + kWindow, 3, false}, {kW2, kW2 + kWindow, 2, false}};
  EXPECT_EQ(this->WindowsOf(*store), want);
  EXPECT_EQ(this->HotIds(*store), (std::multiset<std::string>{"a0", "a1", "a2", "b0", "b1"}));
  ASSERT_TRUE(store->CommitBatch(EventsBatch(30, "c", 0, 1, kW2 + 3 * kSecond, 1)).ok());
  EXPECT_EQ(this->WindowsOf(*store)[1].rows, 3u);
}

TYPED_TEST(HotStoreContractTest, ABatchNotStartingAtTheStoredOffsetIsFencedOff) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch first = EventsBatch(10, "a", 0, 3, kW1, kSecond);
  first.start_offset = 0;
  ASSERT_TRUE(store->CommitBatch(first).ok());
  // Another loader, still at offset 5, commits [5, 15): nothing of it is stored.
  Batch stale = EventsBatch(15, "s", 0, 2, kW1, kSecond);
  stale.start_offset = 5;
  Status st = store->CommitBatch(stale);
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.ToString();
  EXPECT_EQ(*store->CommittedOffset("disk"), 10u);
  EXPECT_EQ(this->HotIds(*store), (std::multiset<std::string>{"a0", "a1", "a2"}));
  // The batch the store already holds whole is still answered OK (a retry after a lost
  // answer), and the next one from the stored offset is taken.
  ASSERT_TRUE(store->CommitBatch(first).ok());
  Batch next = EventsBatch(12, "n", 0, 1, kW1, kSecond);
  next.start_offset = 10;
  ASSERT_TRUE(store->CommitBatch(next).ok());
  EXPECT_EQ(*store->CommittedOffset("disk"), 12u);
  EXPECT_EQ(this->HotIds(*store), (std::multiset<std::string>{"a0", "a1", "a2", "n0"}));
}

TYPED_TEST(HotStoreContractTest, AFailedCommitLeavesNothing) {
  std::string fail_at;
  Params p;
  p.fault_injection = [&fail_at](std::string_view step) {
    return step == fail_at ? Status::IOError("injected at " + std::string(step)) : Status::OK();
  };
  auto store = this->Open(p);
  ASSERT_TRUE(store);
  auto full_batch = [](uint64_t offset, const std::string& prefix, int64_t start) {
    Batch b = EventsBatch(offset, prefix, 0, 3000, start, 1000);
    b.rejections.push_back({start, "web", "bad", "{"});
    b.rollups.push_back({start / kMinute * kMinute, "track", "Product Viewed", 3000});
    return b;
  };
  auto expect_unchanged = [&](uint64_t offset, const std::vector<WindowInfo>& windows,
                              size_t ids, int64_t rollups, int64_t rejected, const char* step) {
    EXPECT_EQ(*store->CommittedOffset("disk"), offset) << step;
    EXPECT_EQ(this->WindowsOf(*store), windows) << step;
    EXPECT_EQ(this->HotIds(*store).size(), ids) << step;
    EXPECT_EQ(this->Scalar(*store, "SELECT COALESCE(sum(count), 0) FROM events_1m"), rollups)
        << step;
    EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_rejected"), rejected) << step;
  };
  for (const char* step : {"appended", "before_commit"}) {
    fail_at = step;
    Status st = store->CommitBatch(full_batch(5, "a", kW1));
    EXPECT_EQ(st.code(), StatusCode::kIOError) << step;
    EXPECT_EQ(*store->MaxReceivedAt(), 0);
    expect_unchanged(0, {}, 0, 0, 0, step);
  }
  fail_at = "";
  ASSERT_TRUE(store->CommitBatch(full_batch(5, "a", kW1)).ok());
  std::vector<WindowInfo> one = {{kW1, kW2, 3000, false}};
  expect_unchanged(5, one, 3000, 3000, 1, "committed");

  // A failure in a commit that would add a window and add to an existing one.
  fail_at = "before_commit";
  Batch b = full_batch(9, "b", kW1 + kMinute);
  b.events.push_back(MakeEvent("late", kW2 + kSecond));
  EXPECT_FALSE(store->CommitBatch(b).ok());
  expect_unchanged(5, one, 3000, 3000, 1, "second failure");
  EXPECT_EQ(*store->MaxReceivedAt(), kW1 + 2999 * 1000);
  // The same batch, retried, commits.
  fail_at = "";
  ASSERT_TRUE(store->CommitBatch(b).ok());
  std::vector<WindowInfo> two = {{kW1, kW2, 6000, false}, {kW2, kW3, 1, false}};
  expect_unchanged(9, two, 6001, 6000, 2, "retried");
}

TYPED_TEST(HotStoreContractTest, WindowsSplitAtTheirBoundaries) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch b = EventsBatch(1, "a", 0, 5, kW1 + kWindow - 2 * kSecond, kSecond);  // 2 in W1, 3 in W2
  b.events.push_back(MakeEvent("x", kW3 + 1));
  ASSERT_TRUE(store->CommitBatch(b).ok());
  std::vector<WindowInfo> want = {
      {kW1, kW2, 2, false}, {kW2, kW3, 3, false}, {kW3, kW3 + kWindow, 1, false}};
  EXPECT_EQ(this->WindowsOf(*store), want);
  EXPECT_EQ(this->Export(*store, kW2), 3u);
  EXPECT_EQ(this->FileIds(this->ParquetPath(kW2)), (std::multiset<std::string>{"a2", "a3", "a4"}));
}

TYPED_TEST(HotStoreContractTest, AChangedWindowLengthKeepsOldWindows) {
  {
    auto store = this->Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "a", 0, 1, kW1 + kMinute, 1)).ok());
  }
  Params p;
  p.window_us = 15 * kMinute;  // 12:00 is on a 15-minute boundary; the old window ends 12:10
  auto store = this->Open(p);
  ASSERT_TRUE(store);
  Batch b;
  b.end_offset = 2;
  b.events = {MakeEvent("in-old", kW1 + 7 * kMinute), MakeEvent("cut", kW1 + 12 * kMinute),
              MakeEvent("new", kW1 + 16 * kMinute)};
  ASSERT_TRUE(store->CommitBatch(b).ok());
  std::vector<WindowInfo> want = {{kW1, kW1 + 10 * kMinute, 2, false},
                                  {kW1 + 10 * kMinute, kW1 + 15 * kMinute, 1, false},
                                  {kW1 + 15 * kMinute, kW1 + 30 * kMinute, 1, false}};
  EXPECT_EQ(this->WindowsOf(*store), want);
  EXPECT_EQ(this->HotIds(*store).size(), 4u);
  store.reset();
  p.window_us = 1500 * 1000;  // 1.5 s: windows are whole seconds
  EXPECT_EQ(TypeParam::Open(this->env_, p).status().code(), StatusCode::kInvalidArgument);
}

// A window's life: exported, marked, dropped; late rows before and after each step.
TYPED_TEST(HotStoreContractTest, WindowLifecycleKeepsEveryRow) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch a = EventsBatch(1, "a", 0, 100, kW1, 5 * kSecond);  // 100 rows over 500 s of W1
  Batch b = EventsBatch(1, "b", 0, 50, kW2, kSecond);
  a.events.insert(a.events.end(), b.events.begin(), b.events.end());
  ASSERT_TRUE(store->CommitBatch(a).ok());
  ASSERT_EQ(this->Export(*store, kW1), 100u);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(2, "c", 0, 10, kW3, kSecond)).ok());

  EXPECT_EQ(store->MarkExported(kW1, 99).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->MarkExported(kW1 + kMinute, 100).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store->MarkExported(kW1, 100).ok());
  ASSERT_TRUE(store->MarkExported(kW1, 100).ok());  // again: no-op
  EXPECT_TRUE(this->WindowsOf(*store)[0].exported);

  EXPECT_EQ(store->DropWindow(kW2).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  EXPECT_EQ(store->DropWindow(kW1).code(), StatusCode::kNotFound);
  EXPECT_EQ(this->WindowsOf(*store).front().start_us, kW2);
  EXPECT_EQ(store->ExportWindowToParquet(kW1, this->ParquetPath(kW1), {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store->MarkExported(kW1, 100).code(), StatusCode::kNotFound);

  // W2: exported, then late rows before it is marked: the stale count is refused.
  ASSERT_EQ(this->Export(*store, kW2), 50u);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(3, "b", 50, 5, kW2 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(store->MarkExported(kW2, 50).code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(this->Export(*store, kW2), 55u);
  ASSERT_TRUE(store->MarkExported(kW2, 55).ok());

  // Late rows into an exported window un-export it.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(4, "b", 55, 2, kW2 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(this->WindowsOf(*store).front(), (WindowInfo{kW2, kW3, 57, false}));
  ASSERT_EQ(this->Export(*store, kW2), 57u);
  ASSERT_TRUE(store->MarkExported(kW2, 57).ok());

  // Late rows into the dropped W1: the window comes back with all its rows, so the re-export
  // (the same file) still holds every one of them.
  ASSERT_TRUE(store->CommitBatch(EventsBatch(5, "a", 100, 1, kW1 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(this->WindowsOf(*store).front(), (WindowInfo{kW1, kW2, 101, false}));
  ASSERT_EQ(this->Export(*store, kW1), 101u);
  std::multiset<std::string> w1 = this->FileIds(this->ParquetPath(kW1));
  EXPECT_EQ(w1.size(), 101u);
  EXPECT_EQ(std::set<std::string>(w1.begin(), w1.end()).size(), 101u);
  EXPECT_EQ(w1.count("a0") + w1.count("a99") + w1.count("a100"), 3u);
  ASSERT_TRUE(store->MarkExported(kW1, 101).ok());
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  ASSERT_TRUE(store->DropWindow(kW2).ok());

  // The catalog survives a reopen, and so does what it knows about dropped windows.
  store.reset();
  store = this->Open();
  ASSERT_TRUE(store);
  std::vector<WindowInfo> want = {{kW3, kW3 + kWindow, 10, false}};
  EXPECT_EQ(this->WindowsOf(*store), want);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(6, "a", 101, 1, kW1 + 9 * kMinute, 1)).ok());
  EXPECT_EQ(this->WindowsOf(*store).front(), (WindowInfo{kW1, kW2, 102, false}));
  ASSERT_EQ(this->Export(*store, kW1), 102u);
  w1 = this->FileIds(this->ParquetPath(kW1));
  EXPECT_EQ(std::set<std::string>(w1.begin(), w1.end()).size(), 102u);
}

// The file's columns, types and order are the contract: the same for every store.
TYPED_TEST(HotStoreContractTest, ExportWritesTheSchemaInReceivedAtOrder) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch b;
  b.end_offset = 1;
  for (int i = 0; i < 5000; ++i) {  // received_at out of order
    b.events.push_back(MakeEvent("e" + std::to_string(i), kW1 + ((i * 37) % 5000) * 1000, i));
  }
  b.events[3].sent_at_us.reset();
  b.events[3].traits = R"({"b":1,"a":[1,2,{"b":null}]})";  // key order is kept
  b.events[4].user_id.clear();
  ASSERT_TRUE(store->CommitBatch(b).ok());
  ParquetOptions po;
  po.zstd_level = 3;
  po.row_group_rows = 2048;  // DuckDB's row groups are whole vectors of 2048 rows
  ASSERT_EQ(this->Export(*store, kW1, po), 5000u);
  const std::string file = duck::QuoteLiteral(this->ParquetPath(kW1));
  const std::string path = file + ", hive_partitioning = false";
  auto s = this->Read("SELECT name, type, logical_type FROM parquet_schema(" + file +
                      ") WHERE name <> 'duckdb_schema'");
  const std::string kUtcMicros =
      "TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), "
      "NANOS=<null>))";
  std::string schema;
  for (uint64_t i = 0; i < s.rows(); ++i) {
    schema += s.String(0, i) + ":" + s.String(1, i) + ":" + s.String(2, i) + ",";
  }
  EXPECT_EQ(schema,
            "event_id:BYTE_ARRAY:,type:BYTE_ARRAY:,event:BYTE_ARRAY:,user_id:BYTE_ARRAY:,"
            "anonymous_id:BYTE_ARRAY:,event_time:INT64:" + kUtcMicros + ",sent_at:INT64:" +
                kUtcMicros + ",received_at:INT64:" + kUtcMicros +
                ",properties:BYTE_ARRAY:JsonType(),traits:BYTE_ARRAY:JsonType(),"
                "context:BYTE_ARRAY:JsonType(),source:BYTE_ARRAY:,");
  auto d = this->Read("DESCRIBE SELECT * FROM read_parquet(" + path + ")");
  std::string types;
  for (uint64_t i = 0; i < d.rows(); ++i) types += d.String(1, i) + ",";
  EXPECT_EQ(types,
            "VARCHAR,VARCHAR,VARCHAR,VARCHAR,VARCHAR,TIMESTAMP WITH TIME ZONE,TIMESTAMP WITH TIME "
            "ZONE,TIMESTAMP WITH TIME ZONE,JSON,JSON,JSON,VARCHAR,");
  const std::string meta = "parquet_metadata(" + file + ")";
  EXPECT_EQ(this->Read("SELECT count(DISTINCT row_group_id) FROM " + meta).Int64(0, 0), 3);
  EXPECT_EQ(this->Read("SELECT string_agg(DISTINCT compression) FROM " + meta).String(0, 0),
            "ZSTD");
  EXPECT_EQ(this->Read("SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER () AS "
                       "back FROM read_parquet(" +
                       path + ")) WHERE back")
                .Int64(0, 0),
            0);
  // Every value exactly as committed; "" and no sentAt are NULL (sent_at is checked above).
  auto r = this->Read(
      "SELECT event_id, type, event, user_id, anonymous_id, epoch_us(event_time), "
      "epoch_us(sent_at), epoch_us(received_at), properties, traits, context, source, "
      "sent_at IS NULL, user_id IS NULL, traits IS NULL FROM read_parquet(" +
      path + ")");
  ASSERT_EQ(r.rows(), 5000u);
  std::map<std::string, const event::Event*> by_id;
  for (const auto& e : b.events) by_id[e.event_id] = &e;
  int mismatches = 0;
  for (uint64_t i = 0; i < r.rows(); ++i) {
    const event::Event& e = *by_id.at(r.String(0, i));
    const bool same =
        r.String(1, i) == e.type && r.String(2, i) == e.event && r.String(3, i) == e.user_id &&
        r.String(4, i) == e.anonymous_id && r.Int64(5, i) == e.event_time_us &&
        (e.sent_at_us ? r.Int64(6, i) == *e.sent_at_us : r.IsNull(6, i)) &&
        r.Int64(7, i) == e.received_at_us && r.String(8, i) == e.properties &&
        r.String(9, i) == e.traits && r.String(10, i) == e.context && r.String(11, i) == e.source &&
        r.String(13, i) == (e.user_id.empty() ? "true" : "false") &&
        r.String(14, i) == (e.traits.empty() ? "true" : "false");
    if (!same && ++mismatches <= 3) {
      std::string got;
      for (uint64_t c = 0; c < r.columns(); ++c) got += r.String(c, i) + " | ";
      ADD_FAILURE() << "row of " << e.event_id << " differs: " << got;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TYPED_TEST(HotStoreContractTest, ForEachEventIdSinceSeesHotExportedAndDroppedWindows) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch a = EventsBatch(1, "a", 0, 100, kW1, 5 * kSecond);
  Batch b = EventsBatch(1, "b", 0, 3000, kW2, 100'000);  // more than one chunk
  Batch c = EventsBatch(1, "c", 0, 10, kW3, kSecond);
  std::map<std::string, int64_t> received;
  for (Batch* x : {&b, &c}) a.events.insert(a.events.end(), x->events.begin(), x->events.end());
  for (const auto& e : a.events) received[e.event_id] = e.received_at_us;
  ASSERT_TRUE(store->CommitBatch(a).ok());
  // W1 dropped, W2 exported but hot, W3 hot.
  for (int64_t w : {kW1, kW2}) {
    const uint64_t rows = this->Export(*store, w);
    ASSERT_TRUE(store->MarkExported(w, rows).ok());
  }
  ASSERT_TRUE(store->DropWindow(kW1).ok());
  for (int64_t since :
       {int64_t{0}, kW1 + 250 * kSecond, kW2 + 100 * kSecond, kW3 + 5 * kSecond, kW3 + kWindow}) {
    std::multiset<std::string> want;
    for (const auto& [id, t] : received) {
      if (t >= since) want.insert(id);
    }
    EXPECT_EQ(this->HotIds(*store, since), want) << "since " << since;
  }
}

TYPED_TEST(HotStoreContractTest, RejectionsRollupsAndBadUtf8AreStored) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  Batch b;
  b.end_offset = 3;
  b.rejections.push_back({kT0 + 42, "web", "event 0: missing userId", R"({"type":"track"})"});
  b.rejections.push_back({kT0 + 43, "", "not JSON", "\xff\xfe{"});
  event::Event e = MakeEvent("utf", kT0);
  e.user_id = "caf\xc3\xa9-\xc3";  // valid é, then a truncated sequence
  b.events.push_back(e);
  b.rollups.push_back({kT0, "track", "Product Viewed", 2});
  b.rollups.push_back({kT0, "identify", "", 1});
  ASSERT_TRUE(store->CommitBatch(b).ok());
  Batch again;
  again.end_offset = 4;
  again.rollups.push_back({kT0, "track", "Product Viewed", 5});
  again.rollups.push_back({kT0, "identify", "", 1});
  again.rollups.push_back({kT0 + kMinute, "identify", "", 1});
  ASSERT_TRUE(store->CommitBatch(again).ok());

  EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_rejected"), 2);
  EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_rejected WHERE source IS NULL"), 1);
  EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_rejected WHERE body = "
                                 "'{\"type\":\"track\"}' AND error = 'event 0: missing userId'"),
            1);
  // One row per key, counts merged; an empty event name is NULL.
  EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_1m"), 3);
  EXPECT_EQ(this->Scalar(*store, "SELECT count FROM events_1m WHERE type = 'track'"), 7);
  EXPECT_EQ(this->Scalar(*store, "SELECT sum(count) FROM events_1m WHERE event IS NULL"), 3);
  ASSERT_EQ(this->Export(*store, kW1), 1u);
  EXPECT_EQ(this->Read("SELECT user_id FROM read_parquet(" +
                       duck::QuoteLiteral(this->ParquetPath(kW1)) + ")")
                .String(0, 0),
            "caf\xc3\xa9-\xef\xbf\xbd");
}

TYPED_TEST(HotStoreContractTest, ExportsRunBesideCommits) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CommitBatch(EventsBatch(1, "seed", 0, 10, kW1, 1)).ok());
  std::atomic<bool> done{false};
  std::atomic<int> export_errors{0}, exports{0};
  const std::string path = this->env_.data + "/concurrent.parquet";
  std::thread exporter([&] {
    while (!done) {
      auto rows = store->ExportWindowToParquet(kW1, path, {});
      if (!rows.ok() || *rows < 10) {
        ADD_FAILURE() << (rows.ok() ? "too few rows" : rows.status().ToString());
        ++export_errors;
      }
      ++exports;
    }
  });
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store
                    ->CommitBatch(EventsBatch(2 + i, "b" + std::to_string(i) + "-", 0, 200,
                                              kW1 + kSecond, 1))
                    .ok());
  }
  done = true;
  exporter.join();
  EXPECT_EQ(export_errors.load(), 0);
  EXPECT_GT(exports.load(), 0);
  EXPECT_EQ(this->HotIds(*store).size(), 4010u);
  EXPECT_EQ(*store->CommittedOffset("disk"), 21u);
  EXPECT_EQ(this->Export(*store, kW1), 4010u);
}

// Two loaders (two buffer shards) commit at once into the same windows and rollup keys.
TYPED_TEST(HotStoreContractTest, TwoShardsCommitConcurrently) {
  auto store = this->Open();
  ASSERT_TRUE(store);
  constexpr int kBatches = 10, kPerBatch = 500;
  std::atomic<int> errors{0};
  auto loader = [&](const std::string& shard) {
    for (int i = 0; i < kBatches; ++i) {
      Batch b = EventsBatch(static_cast<uint64_t>(i + 1), shard + "-" + std::to_string(i) + "-",
                            0, kPerBatch, kW1 + i * kMinute, 1000);
      b.shard = shard;
      b.rollups.push_back({kW1 + i * kMinute, "track", "Product Viewed", kPerBatch});
      b.rollups.push_back({kW1, "track", "Product Viewed", 1});  // a key both always touch
      Status st = store->CommitBatch(b);
      if (!st.ok()) {
        ADD_FAILURE() << shard << ": " << st.ToString();
        ++errors;
      }
    }
  };
  std::thread s0(loader, "s0"), s1(loader, "s1");
  s0.join();
  s1.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(*store->CommittedOffset("s0"), uint64_t{kBatches});
  EXPECT_EQ(*store->CommittedOffset("s1"), uint64_t{kBatches});
  std::vector<WindowInfo> want = {{kW1, kW2, 2 * kBatches * kPerBatch, false}};
  EXPECT_EQ(this->WindowsOf(*store), want);
  EXPECT_EQ(this->HotIds(*store).size(), size_t{2 * kBatches * kPerBatch});
  EXPECT_EQ(this->Scalar(*store, "SELECT sum(count) FROM events_1m"),
            2 * kBatches * (kPerBatch + 1));
  EXPECT_EQ(this->Scalar(*store, "SELECT count(*) FROM events_1m"), kBatches);
}

}  // namespace
}  // namespace sluice::store
