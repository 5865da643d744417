#include "bench/run_log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::bench {
namespace {

std::string Ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ms);
  return buf;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RunLogTest, AckedCsvIsSortedWithItsHeader) {
  const std::string csv = FormatAckedCsv({{18, 16}, {0, 18}, {34, 1}});
  EXPECT_EQ(csv, "first_seq,count\n0,18\n18,16\n34,1\n");
  EXPECT_EQ(FormatAckedCsv({}), "first_seq,count\n");
}

TEST(RunLogTest, SeriesBucketsBySecondAndFoldsTheDrainIntoTheLastRow) {
  SecondSeries a, b;
  a.Offered(0.0, 10);
  a.Offered(0.999, 5);
  b.Offered(1.0, 7);
  a.Acked(0.5, 10, 1000);   // 1 ms
  b.Acked(0.7, 5, 3000);    // 3 ms
  a.Acked(2.2, 7, 20'000);  // 20 ms
  b.Error(1.5);
  b.Error(1.6);
  a.Acked(3.4, 100, 9000);  // after the measured 3 s: the drain, counts in the last row
  a.Error(4.1);
  a.Offered(-0.2, 1);  // before the start: second 0
  a.Merge(b);
  const std::vector<SeriesRow> rows = a.Rows(3);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].second, 0u);
  EXPECT_EQ(rows[0].offered_events, 16u);
  EXPECT_EQ(rows[0].acked_events, 15u);
  EXPECT_EQ(rows[0].error_requests, 0u);
  EXPECT_EQ(rows[0].acked_requests, 2u);
  EXPECT_NEAR(rows[0].p50_ms, 1.0, 0.01);
  EXPECT_NEAR(rows[0].p99_ms, 3.0, 0.02);
  EXPECT_EQ(rows[1].offered_events, 7u);
  EXPECT_EQ(rows[1].acked_events, 0u);
  EXPECT_EQ(rows[1].error_requests, 2u);
  EXPECT_EQ(rows[1].acked_requests, 0u);
  EXPECT_EQ(rows[2].acked_events, 107u);
  EXPECT_EQ(rows[2].error_requests, 1u);
  EXPECT_NEAR(rows[2].p50_ms, 9.0, 0.05);
  EXPECT_NEAR(rows[2].p99_ms, 20.0, 0.1);

  EXPECT_EQ(FormatSeriesCsv(rows),
            "second,offered_events,acked_events,error_requests,p50_ms,p99_ms\n"
            "0,16,15,0," +
                Ms(rows[0].p50_ms) + "," + Ms(rows[0].p99_ms) +
                "\n"
                "1,7,0,2,,\n"
                "2,0,107,1," +
                Ms(rows[2].p50_ms) + "," + Ms(rows[2].p99_ms) + "\n");
  // Rows of a longer run keep the later seconds apart.
  const std::vector<SeriesRow> longer = a.Rows(5);
  ASSERT_EQ(longer.size(), 5u);
  EXPECT_EQ(longer[2].acked_events, 7u);
  EXPECT_EQ(longer[3].acked_events, 100u);
  EXPECT_EQ(longer[4].error_requests, 1u);
  // An empty series still has its rows; 0 rows is 1.
  EXPECT_EQ(SecondSeries().Rows(0).size(), 1u);
  EXPECT_EQ(Lines(FormatSeriesCsv(SecondSeries().Rows(4))).size(), 5u);
}

}  // namespace
}  // namespace sluice::bench
