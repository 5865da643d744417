// The embedded pipeline through the real binary (issue 3): HTTP → disk buffer → loader →
// DuckDB hot store → Parquet windows in a local object store, queried over /v1/query.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/json_writer.h"
#include "http/test_client.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Runs `sql` over /v1/query; returns the parsed response (fails the test on a non-200).
struct QueryResponse {
  int status = 0;
  std::string body;
  std::vector<std::vector<std::string>> rows;  // every value as text (numbers as digits)
};

QueryResponse Query(http::TestClient& c, const std::string& sql) {
  QueryResponse out;
  std::string body = "{\"sql\":";
  AppendJsonString(&body, sql);
  body += "}";
  auto r = c.Post("/v1/query", body, {{"Content-Type", "application/json"}});
  if (!r.ok()) {
    out.status = -1;
    out.body = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  if (r->status != 200) return out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->body).get(doc)) return out;
  simdjson::dom::array rows;
  if (doc["rows"].get_array().get(rows)) return out;
  for (auto row : rows) {
    std::vector<std::string> vals;
    for (auto v : row.get_array()) {
      if (v.is_string()) {
        vals.emplace_back(std::string(v.get_string().value()));
      } else {
        vals.push_back(simdjson::minify(v));
      }
    }
    out.rows.push_back(std::move(vals));
  }
  return out;
}

int64_t QueryInt(http::TestClient& c, const std::string& sql) {
  QueryResponse q = Query(c, sql);
  if (q.status != 200 || q.rows.empty() || q.rows[0].empty()) {
    ADD_FAILURE() << sql << " -> " << q.status << " " << q.body;
    return -1;
  }
  return std::stoll(q.rows[0][0]);
}

// Polls until `sql` returns `want` (or the deadline passes); returns the last value.
int64_t WaitForInt(http::TestClient& c, const std::string& sql, int64_t want,
                   std::chrono::seconds deadline = std::chrono::seconds(60)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  int64_t got = -1;
  while (std::chrono::steady_clock::now() < until) {
    QueryResponse q = Query(c, sql);
    if (q.status == 200 && !q.rows.empty()) {
      got = std::stoll(q.rows[0][0]);
      if (got == want) return got;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return got;
}

// A batch body of `n` events with messageIds prefix-i, and received spread over event names.
std::string Batch(const std::string& prefix, int from, int n) {
  std::string body = "{\"batch\":[";
  for (int i = from; i < from + n; ++i) {
    if (i > from) body += ',';
    body += R"({"type":"track","messageId":")" + prefix + std::to_string(i) +
            R"(","userId":"user-)" + std::to_string(i % 97) + R"(","event":")" +
            (i % 3 == 0 ? "Order Completed" : "Product Viewed") +
            R"(","properties":{"sku":"SKU-)" + std::to_string(i % 50) +
            R"(","price":12.5,"tags":["a","b"]},"context":{"page":{"path":"/p/)" +
            std::to_string(i % 7) + R"("}}})";
  }
  return body + "]}";
}

const Headers kJson = {{"Content-Type", "application/json"}};

TEST(PipelineIntegration, TwoHundredThousandEventsCountedExactlyOnce) {
  TempDir dir;
  auto proc = SluiceProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  const int kClients = 4, kPerClient = 50'000, kBatch = 500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      http::TestClient c((*proc)->address());
      for (int i = 0; i < kPerClient; i += kBatch) {
        auto r = c.Post("/v1/batch", Batch("c" + std::to_string(t) + "-", i, kBatch), kJson);
        if (!r.ok() || r->status != 200) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  http::TestClient c((*proc)->address());
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 200'000), 200'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 200'000);
  // Rollups count the same events.
  EXPECT_EQ(QueryInt(c, "SELECT sum(count)::BIGINT FROM events_1m"), 200'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events WHERE properties->>'$.sku' = 'SKU-7'"),
            4'000);
}

TEST(PipelineIntegration, SameBatchTwiceIsStoredOnceAndRejectsAreQueryable) {
  TempDir dir;
  auto proc = SluiceProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  std::string body = Batch("dup-", 0, 100);
  ASSERT_EQ(c.Post("/v1/batch", body, kJson)->status, 200);
  ASSERT_EQ(c.Post("/v1/batch", body, kJson)->status, 200);  // a client retry
  ASSERT_EQ(c.Post("/v1/track", R"({"event":"no user"})", kJson)->status, 400);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events_rejected", 1), 1);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 100), 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the retry is loaded by now
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events"), 100);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 100);
  auto q = Query(c, "SELECT error FROM events_rejected");
  ASSERT_EQ(q.rows.size(), 1u);
  EXPECT_NE(q.rows[0][0].find("userId"), std::string::npos) << q.rows[0][0];
}

TEST(PipelineIntegration, KillNineDuringLoadLeavesExactlyTheAcknowledgedEvents) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::vector<std::string> args = {"--query-max-rows", "10000000"};
  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      http::TestClient c((*proc)->address());
      for (int seq = 0; !stop; ++seq) {
        std::string prefix = "k" + std::to_string(t) + "-" + std::to_string(seq) + "-";
        auto r = c.Post("/v1/batch", Batch(prefix, 0, 50), kJson);
        if (!r.ok()) return;
        if (r->status == 200) {
          std::lock_guard lock(mu);
          for (int i = 0; i < 50; ++i) acked.insert(prefix + std::to_string(i));
        }
      }
    });
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    {
      std::lock_guard lock(mu);
      if (acked.size() >= 40'000) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (*proc)->Kill();
  stop = true;
  for (auto& th : threads) th.join();

  auto again = SluiceProcess::Start(data, args);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  http::TestClient c((*again)->address());
  // Wait until the loader has drained what the buffer holds (count stops changing).
  int64_t last = -1, now = 0;
  for (int stable = 0; stable < 5;) {
    now = QueryInt(c, "SELECT count(*) FROM events");
    stable = now == last ? stable + 1 : 0;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), now) << "a duplicate";
  auto ids = Query(c, "SELECT event_id FROM events");
  ASSERT_EQ(ids.status, 200) << ids.body;
  std::set<std::string> stored;
  for (auto& row : ids.rows) stored.insert(row[0]);
  size_t missing = 0;
  for (const auto& id : acked) missing += stored.count(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
  // Only events in flight at the kill may be there without an acknowledgement.
  EXPECT_LE(stored.size(), acked.size() + 4 * 50);
}

TEST(PipelineIntegration, WindowsBecomeParquetAndEventsCountOnceThroughout) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::vector<std::string> args = {"--export-interval", "2s", "--export-grace", "500ms",
                                   "--hot-retention", "3s"};
  auto proc = SluiceProcess::Start(data, args);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  int sent = 0;
  // ~7 s of traffic: several windows close, are exported, and later dropped from hot.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(7);
  int64_t worst_over = 0;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(c.Post("/v1/batch", Batch("w-", sent, 200), kJson)->status, 200);
    sent += 200;
    // The view never counts more than was sent, and never an event twice.
    QueryResponse q = Query(c, "SELECT count(*), count(DISTINCT event_id) FROM events");
    ASSERT_EQ(q.status, 200) << q.body;
    int64_t n = std::stoll(q.rows[0][0]), distinct = std::stoll(q.rows[0][1]);
    EXPECT_EQ(n, distinct);
    worst_over = std::max(worst_over, n - sent);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_LE(worst_over, 0);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", sent), sent);
  // Parquet files appear in the Hive layout, and read_parquet reads them.
  std::string objects = data + "/objects";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int files = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    files = 0;
    if (fs::exists(objects + "/events")) {
      for (auto& p : fs::recursive_directory_iterator(objects + "/events")) {
        if (p.path().extension() == ".parquet") {
          ++files;
          std::string rel = fs::relative(p.path(), objects).string();
          EXPECT_TRUE(rel.starts_with("events/dt=")) << rel;
          EXPECT_NE(rel.find("/hour="), std::string::npos) << rel;
          EXPECT_NE(rel.find("/events-"), std::string::npos) << rel;
          EXPECT_TRUE(rel.ends_with("Z-disk.parquet")) << rel;
        }
      }
    }
    if (files >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(files, 3);
  int64_t in_parquet = QueryInt(
      c, "SELECT count(*) FROM read_parquet('" + objects +
             "/events/**/*.parquet', hive_partitioning=true)");
  EXPECT_GT(in_parquet, 0);
  EXPECT_LE(in_parquet, sent);
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events"), sent);
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();

  // `sluice export --once` exports every closed window; once one interval has passed since
  // the last event, that is every window with data. A second run changes nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  std::string out;
  std::vector<std::string> export_args = {"export", "--once", "--data-dir", data};
  export_args.insert(export_args.end(), args.begin(), args.end());
  ASSERT_EQ(SluiceProcess::RunToCompletion(export_args, &out), 0) << out;
  const std::string first_export = out;
  std::map<std::string, uintmax_t> first;
  for (auto& p : fs::recursive_directory_iterator(objects)) {
    if (p.is_regular_file()) first[p.path().string()] = p.file_size();
  }
  ASSERT_EQ(SluiceProcess::RunToCompletion(export_args, &out), 0) << out;
  std::map<std::string, uintmax_t> second;
  for (auto& p : fs::recursive_directory_iterator(objects)) {
    if (p.is_regular_file()) second[p.path().string()] = p.file_size();
  }
  EXPECT_EQ(first, second);
  // Every event is in exactly one Parquet file now.
  out.clear();
  ASSERT_EQ(SluiceProcess::RunToCompletion(
                {"query", "--data-dir", data, "--format", "csv",
                 "SELECT count(*), count(DISTINCT event_id) FROM read_parquet('" + objects +
                     "/events/**/*.parquet', hive_partitioning=true)"},
                &out),
            0)
      << out;
  EXPECT_NE(out.find(std::to_string(sent) + "," + std::to_string(sent)), std::string::npos)
      << "sent " << sent << "; parquet: " << out << "\nexport --once said:\n" << first_export;
}

TEST(PipelineIntegration, SandboxRefusesAndTimesOutWithClearErrors) {
  TempDir dir;
  auto proc = SluiceProcess::Start(dir.path() + "/data", {"--query-timeout", "500ms"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  struct Case {
    std::string sql;
    std::string says;
  };
  std::vector<Case> refused = {
      {"SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"},
      {"COPY (SELECT 1) TO '/tmp/sluice-sandbox-test.csv'", "COPY"},
      {"ATTACH '/tmp/sluice-sandbox-test.duckdb'", "ATTACH"},
      {"CREATE TABLE t (a INT)", "CREATE"},
      {"INSTALL httpfs", "INSTALL"},
      {"SELECT 1; DROP TABLE events_1m", "single"},
  };
  for (const auto& r : refused) {
    QueryResponse q = Query(c, r.sql);
    EXPECT_EQ(q.status, 400) << r.sql << " -> " << q.body;
    EXPECT_NE(q.body.find(r.says), std::string::npos) << r.sql << " -> " << q.body;
  }
  EXPECT_FALSE(fs::exists("/tmp/sluice-sandbox-test.csv"));
  auto start = std::chrono::steady_clock::now();
  QueryResponse slow = Query(c, "SELECT count(*) FROM range(1000000000000::BIGINT) a");
  EXPECT_EQ(slow.status, 504) << slow.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // Still serving, ingest and queries alike.
  EXPECT_EQ(c.Post("/v1/track", R"({"userId":"u","event":"after"})", kJson)->status, 200);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 1), 1);
}

}  // namespace
}  // namespace sluice::testing
