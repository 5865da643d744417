// `sluice bench --raw-xadd` (bench/raw_xadd.h) against redis-servers of its own
// (buffer/redis_test_server.h, so a test may fill one up, password it or stop it mid-run):
// what is counted matches what Redis holds, the stream is deleted after the run, open loop
// keeps its schedule, error replies and a lost Redis are counted rather than fatal. Like the
// buffer's Redis tests, they run when SLUICE_TEST_REDIS_URL is set (scripts/test.sh sets it
// when redis-server is installed).
#include "bench/raw_xadd.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <simdjson.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "bench/request_mix.h"
#include "buffer/buffer_test_util.h"
#include "buffer/redis_test_server.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;
using buffer::testing::RedisReply;
using buffer::testing::RedisTestServer;

// The cmdstat_NAME line's calls= count from INFO commandstats.
long long Calls(const std::string& info, const std::string& name) {
  const std::string key = "cmdstat_" + name + ":calls=";
  const size_t at = info.find(key);
  return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + key.size());
}

BenchOptions Raw(const std::string& url) {
  BenchOptions o;
  o.raw_xadd_url = url;
  o.raw_xadd_stream = "bench:raw";
  o.connections = 2;
  o.batch = 20;
  o.event_bytes = 512;
  o.duration_s = 0.4;
  o.drain_timeout_s = 2;
  o.connect_timeout_s = 1;
  return o;
}

class RawXaddTest : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_REDIS_OR_SKIP(); }

  buffer::testing::TempDir dir_;  // each test's redis-server keeps its files in dir_/redis
};

TEST(RawXaddOptionsTest, RefusesWhatDoesNotApplyAndBadUrls) {
  BenchOptions ok = Raw("redis://127.0.0.1:6379/1");
  EXPECT_TRUE(ValidateBenchOptions(ok).ok());
  auto refused = [](BenchOptions o) { return ValidateBenchOptions(o).code(); };
  BenchOptions o = ok;
  o.gzip = true;
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.probe_interval_s = 1;
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.endpoint = "track";
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.raw_xadd_stream = "";
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.raw_xadd_url = "http://127.0.0.1:6379";
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.batch = 0;  // the shared checks apply too
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  o = ok;
  o.mix = "seed";
  EXPECT_TRUE(ValidateBenchOptions(o).ok());
  o.rate = 1000;  // the seed mix's schedule is HTTP's: raw mode runs it closed loop only
  EXPECT_EQ(refused(o), StatusCode::kInvalidArgument);
  // The HTTP URL is not looked at in raw mode.
  o = ok;
  o.url = "not a url";
  EXPECT_TRUE(ValidateBenchOptions(o).ok());
}

TEST(RawXaddOptionsTest, DisplayedUrlHidesThePassword) {
  EXPECT_EQ(RedisUrlForDisplay("redis://:s3cret@h:1/2"), "redis://:***@h:1/2");
  EXPECT_EQ(RedisUrlForDisplay("redis://user:s3cret@h:1"), "redis://user:***@h:1");
  EXPECT_EQ(RedisUrlForDisplay("redis://h:1/2"), "redis://h:1/2");
}

TEST_F(RawXaddTest, CountsMatchRedisAndTheStreamIsDeleted) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  ASSERT_NE(redis.Command({"CONFIG", "RESETSTAT"}), nullptr);
  auto r = RunBench(Raw(redis.url()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->raw_xadd);
  EXPECT_GT(r->events_acked, 0u);
  EXPECT_EQ(r->events_acked, r->events_sent);
  EXPECT_EQ(r->events_acked, r->requests_answered * 20);
  EXPECT_EQ(r->latency.count, r->requests_answered);
  EXPECT_TRUE(r->reply_errors.empty());
  EXPECT_TRUE(r->connection_errors.empty());
  // Every XADD of the run was counted: what the stream held is what was acked.
  EXPECT_EQ(r->stream_entries, r->events_acked);
  RedisReply info = redis.Command({"INFO", "commandstats"});
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(Calls(std::string(info->str, info->len), "xadd"),
            static_cast<long long>(r->events_acked));
  EXPECT_TRUE(r->stream_deleted) << r->stream_error;
  EXPECT_EQ(redis.Integer({"EXISTS", "bench:raw"}), 0);

  const std::string json = FormatReport(*r, ReportFormat::kJson);
  EXPECT_NE(json.find("\"mode\":\"raw-xadd\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"errors\":{}"), std::string::npos) << json;
  EXPECT_NE(FormatReport(*r, ReportFormat::kText).find("then deleted (DEL)"), std::string::npos);
}

TEST_F(RawXaddTest, KeptStreamHoldsTheGeneratedEventsOnePerEntry) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.raw_xadd_keep = true;
  o.connections = 1;
  o.batch = 5;
  o.duration_s = 0.2;
  auto r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->stream_deleted);
  EXPECT_TRUE(r->stream_error.empty()) << r->stream_error;
  ASSERT_EQ(redis.Integer({"XLEN", "bench:raw"}), static_cast<long long>(r->events_acked));

  RedisReply entries = redis.Command({"XRANGE", "bench:raw", "-", "+"});
  ASSERT_NE(entries, nullptr);
  ASSERT_EQ(entries->type, REDIS_REPLY_ARRAY);
  simdjson::dom::parser parser;
  std::set<std::string> ids;
  uint64_t bytes = 0;
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* fields = entries->element[i]->element[1];
    ASSERT_EQ(fields->elements, 2u);
    ASSERT_EQ(std::string(fields->element[0]->str), "r");
    const std::string event(fields->element[1]->str, fields->element[1]->len);
    bytes += event.size();
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(event).get(doc), simdjson::SUCCESS) << event;
    std::string_view id, type;
    ASSERT_EQ(doc["messageId"].get(id), simdjson::SUCCESS) << event;
    ASSERT_EQ(doc["type"].get(type), simdjson::SUCCESS) << event;
    ids.emplace(id);
  }
  EXPECT_EQ(ids.size(), entries->elements);  // one event per entry, no repeats
  EXPECT_EQ(bytes, r->acked_json_bytes);
}

// --mix seed: round trip k carries the seed mix's request k (one connection: in order).
TEST_F(RawXaddTest, SeedMixRoundTripsCarryTheMixsRequestSizes) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.mix = "seed";
  o.connections = 1;
  o.duration_s = 0.5;
  auto r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_GT(r->requests_answered, 3u);
  EXPECT_TRUE(r->connection_errors.empty());
  const RequestMix mix = RequestMix::Seed(o.seed);
  uint64_t want = 0;
  for (uint64_t k = 0; k < r->requests_answered; ++k) want += mix.Draw(k).events;
  EXPECT_EQ(r->events_acked, want);
  EXPECT_EQ(r->stream_entries, r->events_acked);
  EXPECT_EQ(r->batch, 0);
  EXPECT_NE(r->method_and_path.find("seed-mix request"), std::string::npos) << r->method_and_path;
}

TEST_F(RawXaddTest, OpenLoopSendsOnSchedule) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.rate = 1000;  // batches of 20 over 2 connections: one every 40 ms each
  o.duration_s = 1;
  auto r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->open_loop);
  // 25 slots per connection in the second, sent or (on a stalled machine) missed.
  EXPECT_EQ(r->requests_sent + r->requests_missed, 50u);
  EXPECT_TRUE(r->rate_target_met) << FormatReport(*r, ReportFormat::kText);
  EXPECT_EQ(r->stream_entries, r->events_acked);
}

TEST_F(RawXaddTest, ErrorRepliesAreCountedAndTheRunGoesOn) {
  RedisTestServer redis(dir_.path() + "/redis", {"maxmemory 3mb"});
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.event_bytes = 2048;
  o.duration_s = 0.5;
  auto r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->reply_errors.size(), 1u) << FormatReport(*r, ReportFormat::kText);
  EXPECT_EQ(r->reply_errors.begin()->first.rfind("XADD: OOM", 0), 0u)
      << r->reply_errors.begin()->first;
  EXPECT_EQ(r->events_acked + r->reply_errors.begin()->second, r->events_sent);
  EXPECT_GT(r->events_acked, 0u);
  EXPECT_EQ(r->stream_entries, r->events_acked);
  EXPECT_TRUE(r->stream_deleted) << r->stream_error;  // DEL is allowed over maxmemory
  EXPECT_NE(FormatReport(*r, ReportFormat::kJson).find("\"errors\":{\"XADD: OOM"),
            std::string::npos);
}

TEST_F(RawXaddTest, PasswordAndDbFromTheUrl) {
  RedisTestServer redis(dir_.path() + "/redis", {"requirepass s3cret"});
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url(":s3cret@", "/2"));
  o.raw_xadd_keep = true;
  o.duration_s = 0.2;
  auto r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->url, "redis://:***@127.0.0.1:" + std::to_string(redis.port()) + "/2");
  EXPECT_EQ(redis.Integer({"XLEN", "bench:raw"}, "s3cret", 2),
            static_cast<long long>(r->events_acked));
  EXPECT_EQ(redis.Integer({"EXISTS", "bench:raw"}, "s3cret", 0), 0);

  o.raw_xadd_url = redis.url(":wrong@");
  EXPECT_FALSE(RunBench(o).ok());
}

TEST_F(RawXaddTest, NoRedisIsUnavailable) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  redis.Stop();
  auto r = RunBench(Raw(redis.url()));
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
}

TEST_F(RawXaddTest, RedisGoneMidRunIsCountedAndTheRunEnds) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.duration_s = 2;
  auto run = std::async(std::launch::async, [&o] { return RunBench(o); });
  std::this_thread::sleep_for(300ms);
  redis.Stop();
  ASSERT_EQ(run.wait_for(10s), std::future_status::ready);
  auto r = run.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->events_acked, 0u);
  EXPECT_LT(r->events_acked, r->events_sent);
  EXPECT_FALSE(r->connection_errors.empty()) << FormatReport(*r, ReportFormat::kText);
  EXPECT_FALSE(r->stream_deleted);
  EXPECT_FALSE(r->stream_error.empty());
}

TEST_F(RawXaddTest, StopEndsTheRunEarly) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  BenchOptions o = Raw(redis.url());
  o.duration_s = 60;
  std::stop_source stop;
  const auto start = std::chrono::steady_clock::now();
  std::jthread stopper([&stop] {
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  auto r = RunBench(o, stop.get_token());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(r->stopped_early);
  EXPECT_LT(r->duration_s, 10);
  EXPECT_GT(r->events_acked, 0u);
  EXPECT_EQ(r->stream_entries, r->events_acked);
  EXPECT_TRUE(r->stream_deleted) << r->stream_error;
}

}  // namespace
}  // namespace sluice::bench
