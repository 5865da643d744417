// `sluice bench --mix seed` against a real `sluice serve`: the files the seed run's checker
// relies on (--acked-out, --series-out, the JSON report) agree with what the server stored, and
// every acknowledged event is stored exactly once under its P-<seq> id.
//
// An integration test (label "integration"): it runs the sluice binary through the helpers of
// tests/integration (sluice_process.h, query_helpers.h).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "http/test_client.h"
#include "query_helpers.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(SeedMixIntegration, AckedEventsAreStoredOnceUnderTheirIds) {
  TempDir dir;
  auto proc = SluiceProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  const std::string prefix = "it-seed";
  const std::string acked_path = dir.path() + "/acked.csv", series_path = dir.path() + "/s.csv",
                    report_path = dir.path() + "/bench.json";
  std::string out;
  const int rc = SluiceProcess::RunToCompletion({"bench",
                                                 "--url",
                                                 "http://" + (*proc)->address(),
                                                 "--mix",
                                                 "seed",
                                                 "--rate",
                                                 "2000",
                                                 "--duration",
                                                 "3",
                                                 "--warmup",
                                                 "0.5",
                                                 "--connections",
                                                 "8",
                                                 "--id-prefix",
                                                 prefix,
                                                 "--probe-interval",
                                                 "0.5",
                                                 "--acked-out",
                                                 acked_path,
                                                 "--series-out",
                                                 series_path,
                                                 "--out",
                                                 report_path},
                                                &out);
  ASSERT_EQ(rc, 0) << out;

  simdjson::dom::parser parser;
  simdjson::dom::element report;
  const std::string json = ReadFile(report_path);
  ASSERT_EQ(parser.parse(json).get(report), simdjson::SUCCESS) << json << out;
  uint64_t offered = 0, acked = 0, probes = 0;
  std::string_view id_prefix;
  ASSERT_EQ(report["events_offered"].get(offered), simdjson::SUCCESS) << json;
  ASSERT_EQ(report["events_acked"].get(acked), simdjson::SUCCESS) << json;
  ASSERT_EQ(report["probes"].get(probes), simdjson::SUCCESS) << json;
  ASSERT_EQ(report["id_prefix"].get(id_prefix), simdjson::SUCCESS) << json;
  EXPECT_EQ(id_prefix, prefix);
  EXPECT_GT(acked, 3000u) << out;
  EXPECT_EQ(acked, offered) << "a healthy server acknowledges everything\n" << out;
  uint64_t track = 0, batches = 0;
  EXPECT_EQ(report.at_pointer("/requests_by_kind/track").get(track), simdjson::SUCCESS);
  EXPECT_EQ(report.at_pointer("/requests_by_kind/server_batch").get(batches), simdjson::SUCCESS);
  EXPECT_GT(track, 0u);
  EXPECT_GT(batches, 0u);

  // The acked CSV: its header, then ranges that neither overlap nor leave a gap (nothing
  // failed), covering the warmup and the measured run.
  const std::vector<std::string> acked_lines = Lines(ReadFile(acked_path));
  ASSERT_GT(acked_lines.size(), 10u);
  EXPECT_EQ(acked_lines[0], "first_seq,count");
  uint64_t next = 0, csv_events = 0, seq_sum = 0;
  for (size_t i = 1; i < acked_lines.size(); ++i) {
    uint64_t first = 0, count = 0;
    char comma = 0;
    std::istringstream line(acked_lines[i]);
    ASSERT_TRUE(line >> first >> comma >> count) << acked_lines[i];
    EXPECT_EQ(first, next) << "line " << i;
    next = first + count;
    csv_events += count;
    seq_sum += count * first + count * (count - 1) / 2;
  }
  EXPECT_GT(csv_events, acked) << "the warmup's acknowledged events are in the CSV too";

  // What the server stored under the run's ids: exactly the CSV's events, once each.
  http::TestClient c((*proc)->address());
  const std::string events = "FROM events WHERE event_id LIKE '" + prefix +
                             "-%' AND event_id NOT LIKE '" + prefix + "-probe-%'";
  const auto want = static_cast<int64_t>(csv_events);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) " + events, want), want);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) " + events), want);
  // Distinct ids, as many as acknowledged, with the same sum of seqs: the same set (short of a
  // conspiracy), in the P-<seq> form.
  EXPECT_EQ(QueryInt(c, "SELECT sum(CAST(substr(event_id, " + std::to_string(prefix.size() + 2) +
                            ") AS BIGINT)) " + events),
            static_cast<int64_t>(seq_sum));
  // Probes use ids of their own.
  EXPECT_GE(QueryInt(c, "SELECT count(*) FROM events WHERE event_id LIKE '" + prefix + "-probe-%'"),
            static_cast<int64_t>(probes));

  // The series: one row per measured second, adding up to the report.
  const std::vector<std::string> series = Lines(ReadFile(series_path));
  ASSERT_EQ(series.size(), 4u) << ReadFile(series_path);
  EXPECT_EQ(series[0], "second,offered_events,acked_events,error_requests,p50_ms,p99_ms");
  uint64_t series_offered = 0, series_acked = 0;
  for (size_t i = 1; i < series.size(); ++i) {
    std::vector<std::string> f;
    std::istringstream row(series[i]);
    for (std::string field; std::getline(row, field, ',');) f.push_back(field);
    ASSERT_EQ(f.size(), 6u) << series[i];
    EXPECT_EQ(f[0], std::to_string(i - 1));
    series_offered += std::stoull(f[1]);
    series_acked += std::stoull(f[2]);
    EXPECT_EQ(f[3], "0");
    EXPECT_GT(std::stod(f[5]), 0) << series[i];
  }
  EXPECT_EQ(series_offered, offered);
  EXPECT_EQ(series_acked, acked);
}

// --probe-engine: the probes ask that /v1/query engine. This server has no PostgreSQL store, so
// engine=postgres probes are refused (counted as errors, never visible), where duckdb probes
// see their events; a bad engine name stops the bench with a sentence.
TEST(SeedMixIntegration, ProbesAskTheEngineTheyAreGiven) {
  TempDir dir;
  auto proc = SluiceProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  auto run = [&](const std::string& engine, std::string* json) {
    const std::string report_path = dir.path() + "/" + engine + ".json";
    std::string out;
    const int rc = SluiceProcess::RunToCompletion(
        {"bench", "--url", "http://" + (*proc)->address(), "--rate", "500", "--duration", "2",
         "--probe-interval", "0.3", "--probe-engine", engine, "--out", report_path},
        &out);
    *json = ReadFile(report_path);
    return rc;
  };
  simdjson::dom::parser parser;
  std::string json;
  ASSERT_EQ(run("duckdb", &json), 0);
  simdjson::dom::element duck = parser.parse(json);
  EXPECT_GT(uint64_t(duck["probes_visible"]), 0u) << json;
  EXPECT_EQ(uint64_t(duck["probe_errors"]), 0u) << json;
  ASSERT_EQ(run("postgres", &json), 0);
  simdjson::dom::element pg = parser.parse(json);
  EXPECT_EQ(uint64_t(pg["probes_visible"]), 0u) << json;
  EXPECT_GT(uint64_t(pg["probe_errors"]), 0u) << json;

  std::string out;
  EXPECT_EQ(
      SluiceProcess::RunToCompletion(
          {"bench", "--url", "http://" + (*proc)->address(), "--probe-engine", "mysql"}, &out),
      2);
  EXPECT_NE(out.find("--probe-engine must be duckdb or postgres"), std::string::npos) << out;
  EXPECT_EQ(
      SluiceProcess::RunToCompletion(
          {"bench", "--url", "http://" + (*proc)->address(), "--probe-lookback", "-1"}, &out),
      2);
  EXPECT_NE(out.find("--probe-lookback must be a number of 0 or more (got '-1')"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace sluice::testing
