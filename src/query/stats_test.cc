// What both stats engines share (query/stats.h): the request's defaults and checks, the
// bucketing rule, the JSON document and its cap, and the scheduling on a worker pool.
#include "query/stats.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <future>
#include <limits>
#include <vector>

#include "event/parser.h"

namespace sluice::query {
namespace {

constexpr int64_t kMay1Noon = 1'714'564'800'000'000;  // 2024-05-01T12:00:00Z

StatsRequest Range(int64_t from, int64_t to, std::string interval = "") {
  StatsRequest r;
  r.from_us = from;
  r.to_us = to;
  r.interval = std::move(interval);
  return r;
}

TEST(PlanStatsTest, DefaultsToTheLastHourInMinutes) {
  const int64_t now = kMay1Noon + 123'456;
  auto plan = PlanStats({}, now);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->to_us, now);
  EXPECT_EQ(plan->from_us, now - kMicrosPerHour);
  EXPECT_EQ(plan->interval, "1m");
  EXPECT_EQ(plan->step_us, kMicrosPerMinute);
  EXPECT_FALSE(plan->event.has_value());

  // Only `to`: the hour before it; only `from`: up to now.
  StatsRequest to_only;
  to_only.to_us = kMay1Noon;
  plan = PlanStats(to_only, now);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->from_us, kMay1Noon - kMicrosPerHour);
  StatsRequest from_only;
  from_only.from_us = now - 2 * kMicrosPerHour;
  plan = PlanStats(from_only, now);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->to_us, now);
}

TEST(PlanStatsTest, ChoosesTheIntervalFromTheSpan) {
  struct Case {
    int64_t span;
    const char* interval;
    int64_t step;
  };
  const std::vector<Case> cases = {
      {1, "1m", kMicrosPerMinute},
      {6 * kMicrosPerHour, "1m", kMicrosPerMinute},
      {6 * kMicrosPerHour + 1, "1h", kMicrosPerHour},
      {14 * kMicrosPerDay, "1h", kMicrosPerHour},
      {14 * kMicrosPerDay + 1, "1d", kMicrosPerDay},
      {365 * kMicrosPerDay, "1d", kMicrosPerDay},
  };
  for (const Case& c : cases) {
    auto plan = PlanStats(Range(kMay1Noon, kMay1Noon + c.span), 0);
    ASSERT_TRUE(plan.ok()) << c.span << ": " << plan.status().ToString();
    EXPECT_EQ(plan->interval, c.interval) << c.span;
    EXPECT_EQ(plan->step_us, c.step) << c.span;
  }
  // A given interval wins over the span's.
  auto plan = PlanStats(Range(kMay1Noon, kMay1Noon + kMicrosPerHour, "1d"), 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->interval, "1d");
}

TEST(PlanStatsTest, CapsTheBucketsCountingPartialOnes) {
  // `from` half-way into a minute: the first bucket starts before it, the last holds to - 1.
  const int64_t from = kMay1Noon + 30'000'000;
  const int64_t to = kMay1Noon + kMaxStatsBuckets * kMicrosPerMinute;
  EXPECT_TRUE(PlanStats(Range(from, to, "1m"), 0).ok());
  auto over = PlanStats(Range(from, to + 1, "1m"), 0);
  ASSERT_EQ(over.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "from..to spans " + std::to_string(kMaxStatsBuckets + 1) +
                                         " buckets of 1m, more than " +
                                         std::to_string(kMaxStatsBuckets) +
                                         "; use a larger interval or a shorter range");
  // The widest range a client can send neither overflows nor passes.
  const int64_t widest = 9'000'000'000'000'000'000;
  over = PlanStats(Range(-widest, widest), 0);
  ASSERT_EQ(over.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("buckets of 1d"), std::string::npos)
      << over.status().message();
}

TEST(PlanStatsTest, RefusesBadRangesIntervalsAndEvents) {
  auto st = PlanStats(Range(kMay1Noon, kMay1Noon), 0).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "from (" + event::FormatTimestamp(kMay1Noon) + ") must be before to (" +
                              event::FormatTimestamp(kMay1Noon) + ")");
  EXPECT_EQ(PlanStats(Range(kMay1Noon + 1, kMay1Noon), 0).status().code(),
            StatusCode::kInvalidArgument);
  for (const char* interval : {"5m", "1M", "60s", "1w", " 1m"}) {
    st = PlanStats(Range(kMay1Noon, kMay1Noon + kMicrosPerHour, interval), 0).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << interval;
    EXPECT_EQ(st.message(), "interval \"" + std::string(interval) + "\" is not one of 1m, 1h, 1d");
  }
  StatsRequest r = Range(kMay1Noon, kMay1Noon + kMicrosPerHour);
  for (std::string bad : {std::string("a\0b", 3), std::string("\xff\xfe"), std::string("\xc3")}) {
    r.event = bad;
    st = PlanStats(r, 0).status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(), "event must be UTF-8 text without NUL bytes");
  }
  r.event = "Ébène \"quoted\"";  // any UTF-8 name is a filter, "" too
  auto plan = PlanStats(r, 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->event, r.event);
  r.event = "";
  EXPECT_TRUE(PlanStats(r, 0).ok());
}

TEST(BucketStartTest, FloorsToMultiplesOfTheStepSinceTheEpochBefore1970Too) {
  for (int64_t step : {kMicrosPerMinute, kMicrosPerHour, kMicrosPerDay}) {
    for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{-1}, kMay1Noon, kMay1Noon - 1, -step,
                      -step - 1, 9'000'000'000'000'000'000, -9'000'000'000'000'000'000}) {
      const int64_t b = BucketStart(t, step);
      EXPECT_EQ(b % step, 0) << t << " " << step;
      EXPECT_LE(b, t) << t << " " << step;
      EXPECT_GT(b + step, t) << t << " " << step;
    }
  }
  // UTC days: 12:00 belongs to its day's midnight.
  EXPECT_EQ(event::FormatTimestamp(BucketStart(kMay1Noon, kMicrosPerDay)),
            "2024-05-01T00:00:00.000000Z");
  EXPECT_EQ(event::FormatTimestamp(BucketStart(-1, kMicrosPerHour)), "1969-12-31T23:00:00.000000Z");
}

TEST(StatsJsonTest, RendersTheDocument) {
  auto plan = PlanStats(Range(kMay1Noon, kMay1Noon + 2 * kMicrosPerHour, "1h"), 0);
  ASSERT_TRUE(plan.ok());
  struct Point {
    int64_t t;
    std::string event;
    int64_t count;
  };
  const std::vector<Point> points = {
      {kMay1Noon, "", 7}, {kMay1Noon, "Sign \"up\"", 5}, {kMay1Noon + kMicrosPerHour, "Ébène", 4}};
  StatsJson json(*plan, points.size());
  int64_t total = 0;
  for (const Point& p : points) {
    ASSERT_TRUE(json.Add(p.t, p.event, p.count).ok());
    total += p.count;
  }
  EXPECT_EQ(json.points(), points.size());
  const std::string doc = json.Finish();
  EXPECT_EQ(doc, R"j({"interval":"1h","from":"2024-05-01T12:00:00.000000Z",)j"
                 R"j("to":"2024-05-01T14:00:00.000000Z","series":[)j"
                 R"j({"t":"2024-05-01T12:00:00.000000Z","event":"","count":7},)j"
                 R"j({"t":"2024-05-01T12:00:00.000000Z","event":"Sign \"up\"","count":5},)j"
                 R"j({"t":"2024-05-01T13:00:00.000000Z","event":"Ébène","count":4}],"total":16})j");
  // It is JSON, and its total is the sum of the points.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(doc).get(root), simdjson::SUCCESS);
  EXPECT_EQ(int64_t(root["total"]), total);
  EXPECT_EQ(simdjson::dom::array(root["series"]).size(), points.size());
  EXPECT_EQ(std::string_view(root["series"].at(1)["event"]), points[1].event);
}

TEST(StatsJsonTest, NoPointsAndThePointCap) {
  auto plan = PlanStats(Range(kMay1Noon, kMay1Noon + kMicrosPerHour), 0);
  ASSERT_TRUE(plan.ok());
  StatsJson empty(*plan, 0);
  EXPECT_EQ(empty.Finish(), R"j({"interval":"1m","from":"2024-05-01T12:00:00.000000Z",)j"
                            R"j("to":"2024-05-01T13:00:00.000000Z","series":[],"total":0})j");

  StatsJson capped(*plan, 2);
  EXPECT_TRUE(capped.Add(kMay1Noon, "a", 1).ok());
  EXPECT_TRUE(capped.Add(kMay1Noon, "b", 1).ok());
  Status st = capped.Add(kMay1Noon, "c", 1);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "the stats have more than 2 points; filter by event or use a larger interval");
  EXPECT_EQ(capped.points(), 2u);
}

TEST(StatsErrorsTest, SentencesNameTheLimit) {
  Status st = StatsTimedOut(std::chrono::milliseconds(300));
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(st.message(),
            "the stats query ran longer than the 300 ms limit (--query-timeout) and was stopped");
  EXPECT_EQ(StatsShuttingDown().code(), StatusCode::kUnavailable);
}

Result<std::string> Submit(WorkerPool& pool, std::function<Result<std::string>(int)> run) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  SubmitStats(pool, std::move(run),
              [&promise](Result<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

TEST(SubmitStatsTest, RunsOnAWorkerRefusesWhenStoppedAndFailsAbandonedRequests) {
  WorkerPool stopped(1, 1);
  auto r = Submit(stopped, [](int) -> Result<std::string> { return std::string("ran"); });
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);  // never started: refused inline

  WorkerPool pool(1, 1);
  pool.Start();
  r = Submit(pool, [](int worker) -> Result<std::string> { return std::to_string(worker); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "0");

  // The worker is held; a request waits in the queue; Stop() abandons it.
  std::promise<void> release, started;
  ASSERT_TRUE(pool.Enqueue([&](int) {
                    started.set_value();
                    release.get_future().wait();
                  })
                  .ok());
  started.get_future().wait();
  std::promise<Result<std::string>> queued;
  auto queued_answer = queued.get_future();
  bool ran = false;
  SubmitStats(
      pool,
      [&ran](int) -> Result<std::string> {
        ran = true;
        return std::string("ran");
      },
      [&queued](Result<std::string> a) { queued.set_value(std::move(a)); });
  pool.Stop([&release] { release.set_value(); });
  auto abandoned = queued_answer.get();
  EXPECT_FALSE(ran);
  EXPECT_EQ(abandoned.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(abandoned.status().message(), StatsShuttingDown().message());
}

}  // namespace
}  // namespace sluice::query
