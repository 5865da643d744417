// History from a bucket, end to end with the real `sluice` binary: events in → windows
// exported as Parquet to s3rver (or azurite) → the local history cache emptied → queries over
// `events` fetch what they need and count exactly. An independent S3 client
// (tests/peers/s3-exports.mjs, @aws-sdk/client-s3) reads the manifest and the Parquet objects
// back, and DuckDB reads those copies with the documented columns.
//
// Needs the s3rver and azurite of scripts/test.sh (SLUICE_TEST_S3_*, AWS_*,
// SLUICE_TEST_AZURE_CONNECTION_STRING); the outage test starts an s3rver of its own.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/temp_dir.h"
#include "duck/duck.h"
#include "http/test_client.h"
#include "objstore/azure_blob.h"
#include "objstore/s3rver_test_server.h"
#include "pg/test_env.h"
#include "query_helpers.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using objstore::testing::EnvOr;
using objstore::testing::RunShell;
using objstore::testing::S3rverProcess;
using objstore::testing::UniquePrefix;

// The columns DESIGN.md documents for the stored event, in order, with their Parquet types as
// DuckDB reads them (JSON is stored as text).
const std::vector<std::string> kDocumentedColumns = {
    "event_id", "type",        "event",      "user_id", "anonymous_id", "event_time",
    "sent_at",  "received_at", "properties", "traits",  "context",      "source"};

struct Entry {
  std::string key;
  std::string window_start, window_end;  // ISO UTC
  int64_t rows = 0;
  bool sha256_ok = false;
};
struct Exports {
  std::vector<Entry> entries;  // by window start
  std::set<std::string> parquet_keys;
  std::string error;
};

// What an independent S3 client finds under s3://BUCKET/PREFIX; with `out_dir`, the Parquet
// objects are downloaded there (OUT_DIR/events/…) and checked against their entries.
Exports ReadExports(const std::string& endpoint, const std::string& bucket,
                    const std::string& prefix, const std::string& out_dir = "") {
  Exports x;
  std::string out;
  const int rc = RunShell("NODE_NO_WARNINGS=1 SLUICE_TEST_S3_ENDPOINT='" + endpoint + "' node '" +
                              SourceDir() + "/tests/peers/s3-exports.mjs' '" + bucket + "' '" +
                              prefix + "' '" + out_dir + "'",
                          &out);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (rc != 0 || parser.parse(out).get(doc) != simdjson::SUCCESS) {
    x.error = "s3-exports.mjs exited " + std::to_string(rc) + ": " + out;
    return x;
  }
  for (simdjson::dom::element e : doc["entries"].get_array()) {
    Entry entry;
    entry.key = std::string(e["key"].get_string().value());
    entry.window_start = std::string(e["window_start"].get_string().value());
    entry.window_end = std::string(e["window_end"].get_string().value());
    entry.rows = e["rows"].get_int64().value();
    bool ok = false;
    if (e["sha256_ok"].get_bool().get(ok) == simdjson::SUCCESS) entry.sha256_ok = ok;
    x.entries.push_back(std::move(entry));
  }
  for (simdjson::dom::element k : doc["parquet_keys"].get_array()) {
    x.parquet_keys.insert(std::string(k.get_string().value()));
  }
  std::sort(x.entries.begin(), x.entries.end(),
            [](const Entry& a, const Entry& b) { return a.window_start < b.window_start; });
  return x;
}

// Every object has its entry and no more, every checksum matches, and the rows add up to
// `sent`.
void ExpectEveryWindowExported(const Exports& x, int64_t sent) {
  int64_t rows = 0;
  std::set<std::string> entry_keys;
  for (const Entry& e : x.entries) {
    EXPECT_TRUE(e.sha256_ok) << e.key;
    rows += e.rows;
    entry_keys.insert(e.key);
  }
  EXPECT_EQ(rows, sent);
  EXPECT_EQ(entry_keys, x.parquet_keys);
}

// `SELECT count(*), count(DISTINCT event_id) FROM events` is `sent` twice.
void ExpectExactCount(http::TestClient& c, int64_t sent) {
  QueryResponse q = Query(c, "SELECT count(*), count(DISTINCT event_id) FROM events");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.rows[0][0], std::to_string(sent));
  EXPECT_EQ(q.rows[0][1], std::to_string(sent));
}

size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    n += it->is_regular_file() && it->path().extension() == ".parquet";
  }
  return n;
}

// Sends batches of 200 for `seconds`, every ~100 ms; returns the events acknowledged.
int SendFor(http::TestClient& c, const std::string& prefix, int seconds, int sent = 0) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    auto r = c.Post("/v1/batch", Batch(prefix, sent, 200), kJson);
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) break;
    sent += 200;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return sent;
}

// Windows of 2 s, closed 0.5 s after their end, dropped from the hot store 1 s after it: after
// `export --once` every event lives only in the bucket.
std::vector<std::string> ExportArgs(std::vector<std::string> args) {
  for (const char* a :
       {"--export-interval", "2s", "--export-grace", "500ms", "--hot-retention", "1s"}) {
    args.push_back(a);
  }
  return args;
}

// Stops the server, waits for the last window to close, and exports (and drops) every window.
void StopAndExportAll(std::unique_ptr<SluiceProcess> proc, const std::string& data,
                      const std::vector<std::string>& args) {
  ASSERT_EQ(proc->Terminate(), 0) << proc->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));  // past the last end + retention
  std::string out;
  std::vector<std::string> export_args = {"export", "--once", "--data-dir", data};
  export_args.insert(export_args.end(), args.begin(), args.end());
  ASSERT_EQ(SluiceProcess::RunToCompletion(export_args, &out), 0) << out;
}

// Empties DATA_DIR/cache and starts `sluice serve` with `args` and --loader=false (loaders
// starting would fetch the recent history their dedup reads), so that what the cache holds
// next is what queries fetched.
Result<std::unique_ptr<SluiceProcess>> StartWithEmptyCache(const std::string& data,
                                                           std::vector<std::string> args) {
  fs::remove_all(data + "/cache");
  args.push_back("--loader=false");
  return SluiceProcess::Start(data, std::move(args));
}

class HistoryBucketTest : public ::testing::Test {
 protected:
  TempDir dir_{"sluice-history-it"};
};

TEST_F(HistoryBucketTest, S3EventsCountExactlyFromAnEmptyCacheAndARangeFetchesOnlyItsFiles) {
  SLUICE_S3_OR_SKIP();
  const std::string endpoint = EnvOr("SLUICE_TEST_S3_ENDPOINT");
  const std::string bucket = EnvOr("SLUICE_TEST_S3_BUCKET");
  const std::string prefix = UniquePrefix("history");
  const std::string data = dir_.path() + "/data";
  const std::vector<std::string> args = ExportArgs(
      {"--object-store", "s3://" + bucket + "/" + prefix, "--object-store-endpoint", endpoint});

  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  int sent = 0;
  {
    http::TestClient c((*proc)->address());
    sent = SendFor(c, "h-", 6);
    EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", sent), sent);
    // Exported windows are in the cache already (the exporter put them there): no fetch.
    EXPECT_EQ(MetricValue(c, "sluice_history_cache_misses_total"), 0);
  }
  StopAndExportAll(std::move(*proc), data, args);

  // An independent client: every window has its entry and its object, checksums match, and
  // the rows add up.
  const std::string copies = dir_.path() + "/copies";
  Exports x = ReadExports(endpoint, bucket, prefix, copies);
  ASSERT_TRUE(x.error.empty()) << x.error;
  ASSERT_GE(x.entries.size(), 3u);
  ExpectEveryWindowExported(x, sent);
  {
    // The copies are valid Parquet with the documented columns, every event once.
    auto db = duck::Database::Open(":memory:");
    ASSERT_TRUE(db.ok());
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok());
    const std::string glob = duck::QuoteLiteral(copies + "/events/**/*.parquet");
    auto cols = (*conn)->Query("SELECT name FROM parquet_schema(" + glob +
                               ") WHERE name <> 'duckdb_schema' AND file_name = (SELECT "
                               "min(file) FROM glob(" +
                               glob + "))");
    ASSERT_TRUE(cols.ok()) << cols.status().ToString();
    std::vector<std::string> names;
    for (uint64_t i = 0; i < cols->rows(); ++i) names.push_back(cols->String(0, i));
    EXPECT_EQ(names, kDocumentedColumns);
    auto counts =
        (*conn)->Query("SELECT count(*), count(DISTINCT event_id) FROM read_parquet(" + glob + ")");
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    EXPECT_EQ(counts->Int64(0, 0), sent);
    EXPECT_EQ(counts->Int64(1, 0), sent);
  }

  // The cache emptied: the hot store holds nothing any more, so every row comes from the
  // bucket: the newest window fetched at start (so the view reads Parquet), the others for the
  // query.
  const Entry& newest = x.entries.back();
  proc = StartWithEmptyCache(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  {
    http::TestClient c((*proc)->address());
    EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM sluice_windows WHERE NOT dropped"), 0);
    EXPECT_EQ(FilesUnder(data + "/cache"), 1u);
    EXPECT_TRUE(fs::exists(data + "/cache/" + newest.key)) << newest.key;
    ExpectExactCount(c, sent);
    EXPECT_EQ(FilesUnder(data + "/cache"), x.entries.size());
    EXPECT_EQ(MetricValue(c, "sluice_history_cache_misses_total"), int64_t(x.entries.size()) - 1);
  }
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();

  // Emptied again: one window's range fetches that window's file only; a query that does not
  // read `events` fetches nothing; a one-hour range fetches that hour's files.
  proc = StartWithEmptyCache(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  {
    http::TestClient c((*proc)->address());
    EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events_1m WHERE count < 0"), 0);
    EXPECT_EQ(FilesUnder(data + "/cache"), 1u);          // the newest only
    const Entry& mid = x.entries[x.entries.size() / 2];  // not the newest: there are >= 3
    EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events WHERE received_at >= TIMESTAMPTZ '" +
                              mid.window_start + "' AND received_at < TIMESTAMPTZ '" +
                              mid.window_end + "'"),
              mid.rows);
    EXPECT_EQ(FilesUnder(data + "/cache"), 2u);
    EXPECT_TRUE(fs::exists(data + "/cache/" + mid.key)) << mid.key;

    // The hour of the first window (the run may cross an hour boundary: count what is in it).
    const std::string hour = x.entries.front().window_start.substr(0, 13) + ":00:00Z";
    std::set<std::string> cached = {newest.key, mid.key};
    int64_t rows_in_hour = 0;
    for (const Entry& e : x.entries) {
      if (e.window_start.substr(0, 13) == hour.substr(0, 13)) {
        cached.insert(e.key);
        rows_in_hour += e.rows;
      }
    }
    EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events WHERE received_at >= TIMESTAMPTZ '" + hour +
                              "' AND received_at < TIMESTAMPTZ '" + hour + "' + INTERVAL 1 HOUR"),
              rows_in_hour);
    EXPECT_EQ(FilesUnder(data + "/cache"), cached.size());
  }
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();

  // Without a server, `sluice query --data-dir` fetches through the same cache.
  fs::remove_all(data + "/cache");
  std::string out;
  ASSERT_EQ(SluiceProcess::RunToCompletion(
                {"query", "--data-dir", data, "--object-store", "s3://" + bucket + "/" + prefix,
                 "--object-store-endpoint", endpoint, "--format", "csv",
                 "SELECT count(*), count(DISTINCT event_id) FROM events"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find(std::to_string(sent) + "," + std::to_string(sent)), std::string::npos) << out;
  EXPECT_EQ(FilesUnder(data + "/cache"), x.entries.size());
}

// s3rver stopped while windows are being exported: uploads fail and are retried; meanwhile no
// window without its object gets a manifest entry, no hot rows go, and every event stays
// queryable exactly once. Once s3rver is back, every window is exported and verified.
TEST_F(HistoryBucketTest, AnOutageOfTheBucketLosesNothingAndExportsResume) {
  SLUICE_S3_OR_SKIP();
  S3rverProcess s3(dir_.path() + "/s3rver");
  const std::string data = dir_.path() + "/data";
  const std::vector<std::string> args = ExportArgs(
      {"--object-store", "s3://private/outage", "--object-store-endpoint", s3.endpoint()});
  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  int sent = SendFor(c, "o-", 3);
  // At least one window exported before the outage.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (MetricValue(c, "sluice_export_windows_total") < 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(MetricValue(c, "sluice_export_windows_total"), 1);

  ASSERT_TRUE(s3.Stop());
  const double exported_before = MetricValue(c, "sluice_export_windows_total");
  sent = SendFor(c, "o-", 4, sent);  // acknowledged while the bucket is down
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", sent), sent);
  // The exporter kept failing (and saying so), and nothing was exported meanwhile.
  const auto fail_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (MetricValue(c, "sluice_export_errors_total") < 1 &&
         std::chrono::steady_clock::now() < fail_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(MetricValue(c, "sluice_export_errors_total"), 1);
  EXPECT_EQ(MetricValue(c, "sluice_export_windows_total"), exported_before);
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events"), sent);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), sent);

  ASSERT_TRUE(s3.Start());
  StopAndExportAll(std::move(*proc), data, args);
  Exports x = ReadExports(s3.endpoint(), "private", "outage", dir_.path() + "/copies");
  ASSERT_TRUE(x.error.empty()) << x.error;
  ExpectEveryWindowExported(x, sent);

  // And from an empty cache, every event once.
  proc = StartWithEmptyCache(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c2((*proc)->address());
  ExpectExactCount(c2, sent);
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();
}

TEST_F(HistoryBucketTest, AzureEventsCountExactlyFromAnEmptyCache) {
  const std::string conn_string = EnvOr("SLUICE_TEST_AZURE_CONNECTION_STRING");
  if (conn_string.empty()) {
    if (EnvOr("SLUICE_REQUIRE_AZURE") == "1") FAIL() << "azurite is required but not set";
    GTEST_SKIP() << "SLUICE_TEST_AZURE_CONNECTION_STRING is not set: start azurite";
  }
  ::setenv("AZURE_STORAGE_CONNECTION_STRING", conn_string.c_str(), 1);
  const std::string container = "history-" + std::to_string(::getpid());
  {
    auto o = objstore::AzureBlobOptionsFromUrl("az://" + container);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    auto az = objstore::AzureBlob::Open(*o);
    ASSERT_TRUE(az.ok()) << az.status().ToString();
    ASSERT_TRUE((*az)->CreateContainer().ok());
  }
  const std::string data = dir_.path() + "/data";
  const std::vector<std::string> args =
      ExportArgs({"--object-store", "az://" + container + "/events-test"});
  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  int sent = 0;
  {
    http::TestClient c((*proc)->address());
    sent = SendFor(c, "az-", 4);
    EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", sent), sent);
  }
  StopAndExportAll(std::move(*proc), data, args);
  proc = StartWithEmptyCache(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM sluice_windows WHERE NOT dropped"), 0);
  ExpectExactCount(c, sent);
  EXPECT_GE(MetricValue(c, "sluice_history_cache_misses_total"), 2);
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();
}

// The PostgreSQL hot store with a bucket: its windows (…-pg.parquet) go to s3rver, and the
// DuckDB engine's `events` (DATA_DIR/history.duckdb: the Parquet history only) reads them
// through the cache.
TEST_F(HistoryBucketTest, PostgresWindowsInTheBucketAreQueriedThroughTheCache) {
  SLUICE_S3_OR_SKIP();
  SLUICE_PG_URL_OR_SKIP(primary, "SLUICE_TEST_PG_URL");
  SLUICE_PG_URL_OR_SKIP(replica, "SLUICE_TEST_PG_REPLICA_URL");
  pg::testing::TestDatabase db(primary, replica);
  ASSERT_TRUE(db.ok());
  const std::string endpoint = EnvOr("SLUICE_TEST_S3_ENDPOINT");
  const std::string bucket = EnvOr("SLUICE_TEST_S3_BUCKET");
  const std::string prefix = UniquePrefix("history-pg");
  const std::string data = dir_.path() + "/data";
  const std::vector<std::string> args =
      ExportArgs({"--store", db.url(), "--store-read", db.replica_url(), "--pg-partition", "4s",
                  "--query-allow-privileged-role=true", "--object-store",
                  "s3://" + bucket + "/" + prefix, "--object-store-endpoint", endpoint});
  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  int sent = 0;
  {
    http::TestClient c((*proc)->address());
    // No count here: PostgreSQL drops windows once they are exported, so neither engine
    // alone sees every event until `export --once` below has exported them all.
    sent = SendFor(c, "pg-", 4);
  }
  StopAndExportAll(std::move(*proc), data, args);
  Exports x = ReadExports(endpoint, bucket, prefix);
  ASSERT_TRUE(x.error.empty()) << x.error;
  ASSERT_FALSE(x.entries.empty());
  for (const Entry& e : x.entries) EXPECT_TRUE(e.key.ends_with("-pg.parquet")) << e.key;

  proc = StartWithEmptyCache(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  ExpectExactCount(c, sent);
  // Every window but the newest (fetched at start) was fetched for the query.
  EXPECT_EQ(MetricValue(c, "sluice_history_cache_misses_total"), int64_t(x.entries.size()) - 1);
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();
}

// A bucket or container that does not exist, or a URL without one, stops `sluice serve` at
// once with a sentence naming it (exit 1 for the service's refusal, 2 for a bad flag).
TEST_F(HistoryBucketTest, AMissingBucketOrABadUrlIsNamedAtStart) {
  SLUICE_S3_OR_SKIP();
  std::string out;
  EXPECT_EQ(SluiceProcess::RunToCompletion(
                {"serve", "--listen", "127.0.0.1:0", "--data-dir", dir_.path() + "/d1",
                 "--object-store", "s3://no-such-bucket-here/p", "--object-store-endpoint",
                 EnvOr("SLUICE_TEST_S3_ENDPOINT")},
                &out),
            1);
  EXPECT_NE(out.find("NoSuchBucket"), std::string::npos) << out;
  EXPECT_EQ(SluiceProcess::RunToCompletion({"serve", "--listen", "127.0.0.1:0", "--data-dir",
                                            dir_.path() + "/d2", "--object-store", "s3://"},
                                           &out),
            2);
  EXPECT_NE(out.find("bucket"), std::string::npos) << out;
  EXPECT_EQ(
      SluiceProcess::RunToCompletion(
          {"serve", "--listen", "127.0.0.1:0", "--data-dir", dir_.path() + "/d3", "--object-store",
           "s3://" + EnvOr("SLUICE_TEST_S3_BUCKET") + "/p", "--object-store-endpoint",
           EnvOr("SLUICE_TEST_S3_ENDPOINT"), "--history-cache-bytes", "10KiB"},
          &out),
      2);
  EXPECT_NE(out.find("--history-cache-bytes"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
