// The Redis Streams buffer through the real binary (issue 5): HTTP → Redis stream(s) → loader →
// hot store. Every test starts redis-servers of its own (buffer/redis_test_server.h,
// scripts/redis.sh: AOF, appendfsync everysec, noeviction), so it may stop them; they run when
// SLUICE_TEST_REDIS_URL is set (scripts/test.sh), and fail without it under
// SLUICE_REQUIRE_REDIS=1. The takeover tests share a PostgreSQL store between two sluice
// processes (SLUICE_TEST_PG_URL, a database of their own).
//
// What they show: exact counts through one and two streams; kill -9 of sluice mid-load and of
// a loader with entries pending (another process claims them); Redis stopped under load, with
// and without --spill disk; the stream's length bounded by what is not loaded yet.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "buffer/redis_test_server.h"
#include "load.h"
#include "pg/test_env.h"
#include "query_helpers.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

using buffer::testing::RedisReply;
using buffer::testing::RedisTestServer;

using namespace std::chrono_literals;
using pg::testing::TestDatabase;

constexpr const char* kStream = "sluice:events";
constexpr const char* kGroup = "sluice";

// `sluice serve` on the Redis buffer `buffer` (one URL or several, comma-separated), with the
// embedded DuckDB hot store unless `more` says otherwise. Windows of 10 minutes: no export
// runs within a test.
std::vector<std::string> ServeArgs(const std::string& buffer, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--buffer",          buffer, "--loader-batch-delay", "50ms",
                                   "--export-interval", "10m",  "--query-max-rows",     "10000000"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Polls `done` every 50 ms until it holds or `deadline` passes; returns whether it held.
template <typename F>
bool PollUntil(std::chrono::milliseconds deadline, F&& done) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
}

// One entry of /readyz's "shards".
struct ShardState {
  std::string name;
  uint64_t depth_events = 0;
  uint64_t committed_offset = 0;
  bool caught_up = false;
  std::string buffer_error;
  std::string last_error;
};

// GET /readyz, parsed.
struct Readiness {
  int status = -1;  // -1: no answer
  std::string body;
  std::string reason;
  bool spilling = false;
  std::vector<ShardState> shards;

  // The first shard whose name starts with `prefix`, or nullptr.
  const ShardState* Shard(const std::string& prefix) const {
    for (const ShardState& s : shards) {
      if (s.name.compare(0, prefix.size(), prefix) == 0) return &s;
    }
    return nullptr;
  }
};

Readiness Ready(http::TestClient& c) {
  Readiness out;
  auto r = c.Get("/readyz");
  if (!r.ok()) {
    out.body = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(out.body).get(doc) != simdjson::SUCCESS) return out;
  std::string_view sv;
  if (doc["reason"].get_string().get(sv) == simdjson::SUCCESS) out.reason = std::string(sv);
  bool spilling = false;
  if (doc["spilling"].get_bool().get(spilling) == simdjson::SUCCESS) out.spilling = spilling;
  simdjson::dom::array shards;
  if (doc["shards"].get_array().get(shards) != simdjson::SUCCESS) return out;
  for (simdjson::dom::element s : shards) {
    ShardState st;
    if (s["name"].get_string().get(sv) == simdjson::SUCCESS) st.name = std::string(sv);
    // A missing field keeps its default (and then fails the assertions that read it).
    if (s["depth_events"].get_uint64().get(st.depth_events)) st.depth_events = UINT64_MAX;
    if (s["committed_offset"].get_uint64().get(st.committed_offset)) st.committed_offset = 0;
    if (s["caught_up"].get_bool().get(st.caught_up)) st.caught_up = false;
    if (s["buffer_error"].get_string().get(sv) == simdjson::SUCCESS) {
      st.buffer_error = std::string(sv);
    }
    if (s["last_error"].get_string().get(sv) == simdjson::SUCCESS) st.last_error = std::string(sv);
    out.shards.push_back(std::move(st));
  }
  return out;
}

// Until the node is ready and every shard's loader has loaded everything its buffer holds.
bool WaitCaughtUp(http::TestClient& c, std::chrono::seconds deadline) {
  return PollUntil(deadline, [&] {
    Readiness r = Ready(c);
    if (r.status != 200 || r.shards.empty()) return false;
    for (const ShardState& s : r.shards) {
      if (!s.caught_up || s.depth_events != 0) return false;
    }
    return true;
  });
}

// "redis:127.0.0.1:PORT/0/sluice:events": the shard name of `redis`'s stream.
std::string ShardName(const RedisTestServer& redis) {
  return "redis:127.0.0.1:" + std::to_string(redis.port()) + "/0/" + kStream;
}

// Every acknowledged id is stored once; only events in flight at a kill or an outage may be
// there unacknowledged.
void ExpectExactlyAcked(http::TestClient& c, const std::set<std::string>& acked, size_t in_flight,
                        const std::string& engine = "duckdb") {
  auto ids = Query(c, "SELECT event_id FROM events", engine);
  ASSERT_EQ(ids.status, 200) << ids.body;
  std::multiset<std::string> stored;
  for (auto& row : ids.rows) stored.insert(row[0]);
  std::set<std::string> distinct(stored.begin(), stored.end());
  EXPECT_EQ(distinct.size(), stored.size()) << "an event stored twice";
  size_t missing = 0;
  for (const auto& id : acked) missing += distinct.count(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
  EXPECT_LE(distinct.size(), acked.size() + in_flight);
  std::printf("%zu acknowledged, %zu stored\n", acked.size(), stored.size());
}

// The group's pending entries of `consumer` (XPENDING's summary form); -1 without an answer.
long long PendingOf(const RedisTestServer& redis, const std::string& consumer) {
  RedisReply r = redis.Command({"XPENDING", kStream, kGroup});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4) return -1;
  const redisReply* consumers = r->element[3];
  if (consumers->type != REDIS_REPLY_ARRAY) return 0;  // nothing pending at all
  for (size_t i = 0; i < consumers->elements; ++i) {
    const redisReply* pair = consumers->element[i];
    if (pair->elements == 2 &&
        std::string(pair->element[0]->str, pair->element[0]->len) == consumer) {
      return std::atoll(pair->element[1]->str);
    }
  }
  return 0;
}

// The group's pending entries in all (XPENDING's summary count); -1 without an answer.
long long PendingTotal(const RedisTestServer& redis) {
  RedisReply r = redis.Command({"XPENDING", kStream, kGroup});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) return -1;
  return r->element[0]->type == REDIS_REPLY_INTEGER ? r->element[0]->integer : -1;
}

std::string FirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

class RedisIntegration : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_REDIS_OR_SKIP(); }
  TempDir dir_;
};

TEST_F(RedisIntegration, TwoHundredThousandEventsThroughRedisAreCountedExactly) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto proc = SluiceProcess::Start(dir_.path() + "/data", ServeArgs(redis.url()));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  ASSERT_EQ(PostBatches((*proc)->address(),
                        {.clients = 4, .per_client = 50'000, .batch = 500, .prefix = "r"}),
            0);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 200'000, 120s), 200'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 200'000);
  EXPECT_EQ(QueryInt(c, "SELECT sum(count) FROM events_1m"), 200'000);
  // One record per event, all through the one stream, all acknowledged in the group and
  // trimmed from Redis.
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body;
  Readiness ready = Ready(c);
  ASSERT_EQ(ready.shards.size(), 1u) << ready.body;
  EXPECT_EQ(ready.shards[0].name, ShardName(redis));
  EXPECT_EQ(ready.shards[0].committed_offset, 200'000u) << ready.body;
  EXPECT_EQ(PendingTotal(redis), 0);
  EXPECT_TRUE(PollUntil(10s,
                        [&] {
                          return redis.Integer({"XLEN", kStream}) == 0;
                        }))
      << "XLEN " << redis.Integer({"XLEN", kStream});
}

TEST_F(RedisIntegration, KillNineDuringLoadThenRestartLoadsExactlyTheAcknowledgedEvents) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  const std::string data = dir_.path() + "/data";
  auto proc = SluiceProcess::Start(data, ServeArgs(redis.url()));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  std::set<std::string> acked;
  {
    Load load((*proc)->address(), LoadOptions{});
    ASSERT_TRUE(PollUntil(30s, [&] { return load.Acked() >= 40'000; })) << load.Acked();
    (*proc)->Kill();  // appends in their MULTI/EXEC, the loader between read and XACK
    load.Stop();
    acked = load.AckedIds();
  }
  auto again = SluiceProcess::Start(data, ServeArgs(redis.url()));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  http::TestClient c((*again)->address());
  ASSERT_TRUE(WaitCaughtUp(c, 120s)) << Ready(c).body;
  ExpectExactlyAcked(c, acked, 4 * 50);
  // The restarted loader (the same consumer: the node id is kept in the data dir) took over
  // what the killed one had read and not acknowledged.
  EXPECT_EQ(PendingTotal(redis), 0);
}

// The PostgreSQL store two sluice processes share, and their flags.
class RedisTakeover : public RedisIntegration {
 protected:
  void SetUp() override {
    RedisIntegration::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    SLUICE_PG_URL_OR_SKIP(primary, "SLUICE_TEST_PG_URL");
    db_ = std::make_unique<TestDatabase>(primary);
    ASSERT_TRUE(db_->ok());
    redis_ = std::make_unique<RedisTestServer>(dir_.path() + "/redis");
    ASSERT_TRUE(redis_->ok());
  }
  std::vector<std::string> Args() const {
    return {"--buffer", redis_->url(), "--store", db_->url(), "--query-allow-privileged-role=true",
            "--query-max-rows", "10000000", "--redis-claim-after", "2s",
            // Batches that take a while to fill: under load the loader has always read
            // entries it has not acknowledged yet.
            "--loader-batch-delay", "300ms", "--export-interval", "10m"};
  }
  // Waits until `consumer` has entries pending, then kill -9s `proc`; returns how many it left
  // pending (read after the kill: nobody can claim them before its lease lapses).
  long long KillWithEntriesPending(SluiceProcess& proc, const std::string& consumer) {
    long long pending = 0;
    EXPECT_TRUE(PollUntil(20s,
                          [&] {
                            if (PendingOf(*redis_, consumer) <= 0) return false;
                            proc.Kill();
                            pending = PendingOf(*redis_, consumer);
                            return true;
                          }))
        << "consumer " << consumer << " never had entries pending";
    return pending;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<RedisTestServer> redis_;
};

TEST_F(RedisTakeover, AKilledLoadersPendingEntriesAreClaimedByAnotherProcess) {
  auto a = SluiceProcess::Start(dir_.path() + "/a", Args());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const std::string consumer_a = FirstLine(dir_.path() + "/a/node-id");
  ASSERT_FALSE(consumer_a.empty());
  http::TestClient ca((*a)->address());
  std::set<std::string> acked;
  long long pending_at_kill = 0;
  {
    Load load((*a)->address(), LoadOptions{});
    // A has loaded some into PostgreSQL (and acknowledged, and trimmed) before it dies.
    ASSERT_TRUE(PollUntil(30s, [&] {
      const Readiness r = Ready(ca);
      const ShardState* s = r.Shard(ShardName(*redis_));
      return s != nullptr && s->committed_offset >= 10'000;
    })) << Ready(ca).body;
    pending_at_kill = KillWithEntriesPending(**a, consumer_a);
    load.Stop();
    acked = load.AckedIds();
  }
  ASSERT_GT(pending_at_kill, 0);

  auto b = SluiceProcess::Start(dir_.path() + "/b", Args());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  http::TestClient c((*b)->address());
  const std::string consumer_b = FirstLine(dir_.path() + "/b/node-id");
  ASSERT_NE(consumer_b, consumer_a);
  const Readiness at_start = Ready(c);
  ASSERT_NE(at_start.Shard(ShardName(*redis_)), nullptr) << at_start.body;
  const uint64_t offset_at_start = at_start.Shard(ShardName(*redis_))->committed_offset;
  // B ingests too: these go to the same stream, after A's.
  for (int i = 0; i < 100; i += 50) {
    auto r = c.Post("/v1/batch", Batch("b-", i, 50), kJson);
    ASSERT_TRUE(r.ok() && r->status == 200);
    for (int k = i; k < i + 50; ++k) acked.insert("b-" + std::to_string(k));
  }

  EXPECT_TRUE(PollUntil(30s, [&] {
    return (*b)->Log().find("took the lease") != std::string::npos;
  })) << (*b)->Log();
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body << (*b)->Log();
  const Readiness done = Ready(c);
  const ShardState* shard = done.Shard(ShardName(*redis_));
  ASSERT_NE(shard, nullptr) << done.body;
  EXPECT_GE(shard->committed_offset, offset_at_start + 100) << done.body;
  EXPECT_GE(shard->committed_offset, acked.size()) << done.body;
  // A's entries went to B (XAUTOCLAIM) and were acknowledged there.
  RedisReply left = redis_->Command({"XPENDING", kStream, kGroup, "-", "+", "100", consumer_a});
  ASSERT_NE(left, nullptr);
  ASSERT_EQ(left->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(left->elements, 0u) << "A's consumer still has entries pending";
  EXPECT_EQ(PendingTotal(*redis_), 0);
  ExpectExactlyAcked(c, acked, 4 * 50, "postgres");
  std::printf("A left %lld entries pending at its kill; B resumed at offset %llu\n",
              pending_at_kill, static_cast<unsigned long long>(offset_at_start));
}

TEST_F(RedisTakeover, AStandbyLoaderTakesOverWhenTheLoaderDies) {
  auto a = SluiceProcess::Start(dir_.path() + "/a", Args());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const std::string consumer_a = FirstLine(dir_.path() + "/a/node-id");
  ASSERT_FALSE(consumer_a.empty());
  http::TestClient ca((*a)->address());
  std::set<std::string> acked;
  Load load((*a)->address(), LoadOptions{});
  ASSERT_TRUE(PollUntil(30s, [&] { return load.Acked() >= 5'000; })) << load.Acked();

  // B starts while A loads: its loader stands by (A holds the lease)…
  auto b = SluiceProcess::Start(dir_.path() + "/b", Args());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  http::TestClient c((*b)->address());
  Readiness standby;
  ASSERT_TRUE(PollUntil(20s, [&] {
    standby = Ready(c);
    const ShardState* s = standby.Shard(ShardName(*redis_));
    return s != nullptr && s->last_error.find("stands by") != std::string::npos;
  })) << standby.body;
  EXPECT_EQ(standby.status, 200) << "a standing-by loader does not make the node unready";
  // …while A loads on, committing and trimming the stream past where B's loader started.
  const uint64_t b_offset = standby.Shard(ShardName(*redis_))->committed_offset;
  ASSERT_TRUE(PollUntil(30s, [&] {
    const Readiness r = Ready(ca);
    const ShardState* s = r.Shard(ShardName(*redis_));
    return s != nullptr && s->committed_offset > b_offset + 20'000;
  }));
  EXPECT_EQ((*b)->Log().find("took the lease"), std::string::npos) << "B loaded while A held it";

  const long long pending_at_kill = KillWithEntriesPending(**a, consumer_a);
  load.Stop();
  acked = load.AckedIds();
  ASSERT_GT(pending_at_kill, 0);

  EXPECT_TRUE(PollUntil(30s, [&] {
    return (*b)->Log().find("took the lease") != std::string::npos;
  })) << (*b)->Log();
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body << (*b)->Log();
  const Readiness done = Ready(c);
  const ShardState* shard = done.Shard(ShardName(*redis_));
  ASSERT_NE(shard, nullptr) << done.body;
  EXPECT_GE(shard->committed_offset, acked.size());
  EXPECT_EQ(shard->last_error, "");
  RedisReply left = redis_->Command({"XPENDING", kStream, kGroup, "-", "+", "100", consumer_a});
  ASSERT_NE(left, nullptr);
  EXPECT_EQ(left->elements, 0u) << "A's consumer still has entries pending";
  ExpectExactlyAcked(c, acked, 4 * 50, "postgres");
}

TEST_F(RedisIntegration, TwoShardsAreBothLoadedExactly) {
  RedisTestServer ra(dir_.path() + "/redis-a");
  RedisTestServer rb(dir_.path() + "/redis-b");
  ASSERT_TRUE(ra.ok() && rb.ok());
  auto proc = SluiceProcess::Start(dir_.path() + "/data", ServeArgs(ra.url() + "," + rb.url()));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  ASSERT_EQ(PostBatches((*proc)->address(),
                        {.clients = 4, .per_client = 12'500, .batch = 250, .prefix = "two"}),
            0);
  EXPECT_EQ(WaitForInt(c, "SELECT count(*) FROM events", 50'000, 60s), 50'000);
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), 50'000);
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body;
  const Readiness ready = Ready(c);
  ASSERT_EQ(ready.shards.size(), 2u) << ready.body;
  const ShardState* a = ready.Shard(ShardName(ra));
  const ShardState* b = ready.Shard(ShardName(rb));
  ASSERT_TRUE(a != nullptr && b != nullptr) << ready.body;
  EXPECT_GT(a->committed_offset, 0u) << ready.body;
  EXPECT_GT(b->committed_offset, 0u) << ready.body;
  EXPECT_EQ(a->committed_offset + b->committed_offset, 50'000u) << ready.body;
  // Each server holds its own stream, loaded and trimmed.
  EXPECT_EQ(PendingTotal(ra), 0);
  EXPECT_EQ(PendingTotal(rb), 0);
}

// Redis stopped for ~5 s under load and started again on the same AOF. Without a spill log the
// node answers 503 + Retry-After and says why in /readyz; with --spill disk it acknowledges
// every request into DATA_DIR/spill, loaded as a shard of its own. Either way every
// acknowledged event is loaded once.
class RedisOutage : public RedisIntegration {
 protected:
  struct Outcome {
    std::set<std::string> acked;
    int refused = 0;
    int retry_after = 0;
    Readiness while_down;
    double buffer_up_while_down = -1;
  };

  Outcome StopRedisUnderLoad(RedisTestServer& redis, SluiceProcess& proc, bool spill) {
    Outcome out;
    http::TestClient c(proc.address());
    Load load(
        proc.address(),
        LoadOptions{.clients = 2, .batch = 50, .pad = "", .pause = std::chrono::milliseconds(20)});
    EXPECT_TRUE(PollUntil(30s, [&] { return load.Acked() >= 2'000; })) << load.Acked();
    const auto stopped_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(redis.Stop());
    // /readyz says so: 503 without spill, 200 and "spilling" with it.
    EXPECT_TRUE(PollUntil(10s, [&] {
      out.while_down = Ready(c);
      return out.while_down.reason.find("buffer unavailable") != std::string::npos;
    })) << out.while_down.body;
    out.buffer_up_while_down =
        MetricValue(c, "sluice_buffer_up{shard=\"" + ShardName(redis) + "\"}");
    if (!spill) {
      EXPECT_TRUE(PollUntil(10s, [&] { return load.unavailable_with_retry_after() > 0; }));
    }
    const size_t acked_while_down = load.Acked();
    std::this_thread::sleep_until(stopped_at + 5s);  // the outage's length
    if (spill) {
      EXPECT_GT(load.Acked(), acked_while_down) << "no acknowledgement while spilling";
    }
    EXPECT_TRUE(redis.Restart());
    EXPECT_TRUE(PollUntil(20s, [&] {
      Readiness r = Ready(c);
      return r.status == 200 && r.reason.empty();
    })) << Ready(c).body;
    const size_t acked_at_restart = load.Acked();
    EXPECT_TRUE(PollUntil(30s, [&] { return load.Acked() >= acked_at_restart + 1'000; }))
        << "no acknowledgement after Redis came back";
    load.Stop();
    out.acked = load.AckedIds();
    out.refused = load.refused();
    out.retry_after = load.unavailable_with_retry_after();
    return out;
  }
};

TEST_F(RedisOutage, WithoutSpillClientsGet503RetryAfterAndEverythingAckedIsLoadedOnce) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto proc = SluiceProcess::Start(dir_.path() + "/data", ServeArgs(redis.url()));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  Outcome out = StopRedisUnderLoad(redis, **proc, /*spill=*/false);
  EXPECT_EQ(out.while_down.status, 503) << out.while_down.body;
  const ShardState* down = out.while_down.Shard(ShardName(redis));
  ASSERT_NE(down, nullptr) << out.while_down.body;
  EXPECT_NE(down->buffer_error, "") << out.while_down.body;
  EXPECT_EQ(out.buffer_up_while_down, 0);
  EXPECT_GT(out.retry_after, 0);
  EXPECT_EQ(out.refused, out.retry_after) << "a refusal other than 503 + Retry-After";
  std::printf("%d requests refused with 503 + Retry-After while Redis was down\n", out.retry_after);

  http::TestClient c((*proc)->address());
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body;
  EXPECT_EQ(MetricValue(c, "sluice_buffer_up{shard=\"" + ShardName(redis) + "\"}"), 1);
  ExpectExactlyAcked(c, out.acked, 2 * 50);
}

TEST_F(RedisOutage, WithSpillDiskNothingIsRefusedAndTheSpillIsLoaded) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto proc =
      SluiceProcess::Start(dir_.path() + "/data", ServeArgs(redis.url(), {"--spill", "disk"}));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  Outcome out = StopRedisUnderLoad(redis, **proc, /*spill=*/true);
  EXPECT_EQ(out.while_down.status, 200) << out.while_down.body;
  EXPECT_TRUE(out.while_down.spilling) << out.while_down.body;
  EXPECT_EQ(out.buffer_up_while_down, 0);
  // Every request is acknowledged while spilling, except those Redis took as the connection
  // broke (at most one in flight per client): their outcome is unknown, and spilling them could
  // store them twice, so they are refused (503) rather than spilled.
  EXPECT_LE(out.refused, 2) << "requests refused although the spill could take them";
  EXPECT_EQ(out.refused, out.retry_after) << "a refusal other than 503 + Retry-After";

  http::TestClient c((*proc)->address());
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body;
  const Readiness ready = Ready(c);
  const std::string node = FirstLine(dir_.path() + "/data/node-id");
  const ShardState* spill = ready.Shard("spill:" + node);
  ASSERT_NE(spill, nullptr) << ready.body;
  EXPECT_GT(spill->committed_offset, 0u) << ready.body;
  const ShardState* stream = ready.Shard(ShardName(redis));
  ASSERT_NE(stream, nullptr) << ready.body;
  EXPECT_GT(stream->committed_offset, 0u) << ready.body;
  EXPECT_GE(MetricValue(c, "sluice_buffer_spilled_records_total"), double(spill->committed_offset));
  std::printf("%llu events spilled to disk while Redis was down\n",
              static_cast<unsigned long long>(spill->committed_offset));
  ExpectExactlyAcked(c, out.acked, 2 * 50);
}

// A steady 3,000 events/s for 30 s: the loader acknowledges and trims as it commits, so Redis
// holds the backlog (a fraction of a second of events), not the history.
TEST_F(RedisIntegration, StreamLengthStaysBoundedUnderASteadyLoad) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  const int kLoaderBatch = 10'000;
  auto proc = SluiceProcess::Start(
      dir_.path() + "/data",
      ServeArgs(redis.url(), {"--loader-batch-events", std::to_string(kLoaderBatch)}));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());

  const int kRate = 3'000, kSeconds = 30, kBatch = 150;  // a batch every 50 ms
  const auto period = std::chrono::microseconds(1'000'000LL * kBatch / kRate);
  std::atomic<bool> sending{true};
  std::atomic<int> failures{0};
  std::atomic<long long> sent{0};
  std::thread sender([&] {
    http::TestClient tc((*proc)->address());
    auto next = std::chrono::steady_clock::now();
    const auto end = next + std::chrono::seconds(kSeconds);
    for (int seq = 0; next < end; ++seq) {
      auto r = tc.Post("/v1/batch", Batch("s" + std::to_string(seq) + "-", 0, kBatch), kJson);
      if (!r.ok() || r->status != 200) {
        failures++;
      } else {
        sent += kBatch;
      }
      next += period;
      std::this_thread::sleep_until(next);
    }
    sending = false;
  });
  long long max_len = 0;
  int samples = 0;
  while (sending) {
    std::this_thread::sleep_for(1s);
    const long long len = redis.Integer({"XLEN", kStream});
    EXPECT_GE(len, 0);
    max_len = std::max(max_len, len);
    ++samples;
  }
  sender.join();
  ASSERT_EQ(failures, 0);
  EXPECT_GE(samples, kSeconds - 2);
  EXPECT_GE(sent, kRate * kSeconds * 9 / 10) << "the sender fell behind its rate";
  EXPECT_LT(max_len, kRate * 5) << "the stream grew with the load instead of being trimmed";
  ASSERT_TRUE(WaitCaughtUp(c, 60s)) << Ready(c).body;
  const long long final_len = redis.Integer({"XLEN", kStream});
  EXPECT_GE(final_len, 0);
  EXPECT_LE(final_len, kLoaderBatch);
  EXPECT_EQ(QueryInt(c, "SELECT count(*) FROM events"), sent.load());
  EXPECT_EQ(QueryInt(c, "SELECT count(DISTINCT event_id) FROM events"), sent.load());
  std::printf("%lld events in %d s; XLEN at most %lld (sampled %d times), %lld at the end\n",
              sent.load(), kSeconds, max_len, samples, final_len);
}

}  // namespace
}  // namespace sluice::testing
