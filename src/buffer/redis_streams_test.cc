// RedisStreams beyond the shared contract (buffer_contract_test.cc): URL parsing, one
// transaction per Append, Redis down, maxmemory under noeviction, password and db from the URL,
// state across reopen. Each test starts its own redis-server (buffer/redis_test_server.h, so it
// may stop it or change its limits); they run when SLUICE_TEST_REDIS_URL is set, as with the
// contract suite, which is how scripts/test.sh says "redis-server is installed".
#include "buffer/redis_streams.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "buffer/buffer_test_util.h"
#include "buffer/redis_test_server.h"

namespace sluice::buffer {
namespace {

using namespace std::chrono_literals;
using testing::AppendAndWait;
using testing::RedisReply;
using testing::RedisTestServer;
using testing::TempDir;

TEST(ParseRedisUrlTest, ParsesHostPortPasswordAndDb) {
  auto u = ParseRedisUrl("redis://:s3cret@127.0.0.1:6380/3");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->db, 3);

  auto d = ParseRedisUrl("redis://localhost");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "localhost");
  EXPECT_EQ(d->port, 6379);
  EXPECT_EQ(d->password, "");
  EXPECT_EQ(d->db, 0);

  auto acl = ParseRedisUrl("redis://ingest:pw@h:1/");
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->user, "ingest");
  EXPECT_EQ(acl->password, "pw");
  EXPECT_EQ(acl->db, 0);

  EXPECT_EQ(ParseRedisUrl("http://h:1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://h:99999").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://h:1/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://nopass@h").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://:1").status().code(), StatusCode::kInvalidArgument);
}

class RedisStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_REDIS_OR_SKIP(); }

  static std::unique_ptr<RedisStreams> Open(const std::string& url, const std::string& stream,
                                            uint64_t max_bytes = 1ull << 30) {
    RedisStreamsOptions options;
    options.url = url;
    options.stream = stream;
    options.max_bytes = max_bytes;
    options.timeout = 1000ms;
    auto b = RedisStreams::Open(options);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  TempDir dir_;  // each test's redis-server keeps its files in dir_/redis
};

// The cmdstat_NAME line's calls= count from INFO commandstats.
long long Calls(const std::string& info, const std::string& name) {
  const std::string key = "cmdstat_" + name + ":calls=";
  size_t at = info.find(key);
  if (at == std::string::npos) return 0;
  return std::atoll(info.c_str() + at + key.size());
}

// The stat NAME (a number) from an INFO reply's text.
long long InfoNumber(const std::string& info, const std::string& name) {
  const std::string key = "\n" + name + ":";
  size_t at = info.find(key);
  if (at == std::string::npos) return -1;
  return std::atoll(info.c_str() + at + key.size());
}

TEST_F(RedisStreamsTest, EachAppendIsOneTransactionInOneRoundTrip) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto buffer = Open(redis.url(), "events");
  ASSERT_NE(buffer, nullptr);
  // One connection of our own for INFO, so that our reads are the same before and after.
  std::unique_ptr<redisContext, RedisContextDeleter> c(redisConnect("127.0.0.1", redis.port()));
  ASSERT_TRUE(c && !c->err);
  auto info = [&](const char* section) {
    RedisReply r(static_cast<redisReply*>(redisCommand(c.get(), "INFO %s", section)));
    return r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : std::string();
  };
  RedisReply reset(static_cast<redisReply*>(redisCommand(c.get(), "CONFIG RESETSTAT")));
  ASSERT_NE(reset, nullptr);
  const long long reads_before = InfoNumber(info("stats"), "total_reads_processed");
  std::vector<std::string> batch;
  for (int i = 0; i < 50; ++i) batch.push_back("record-" + std::to_string(i));
  ASSERT_TRUE(AppendAndWait(*buffer, batch).ok());
  const long long reads_after = InfoNumber(info("stats"), "total_reads_processed");
  ASSERT_GE(reads_before, 0);
  // The second INFO is one read; the Append's 52 commands came in one write (a round trip
  // per command would be 52 reads). One more read is allowed for TCP splitting the write.
  EXPECT_LE(reads_after - reads_before, 3) << reads_before << " -> " << reads_after;
  ASSERT_TRUE(AppendAndWait(*buffer, {"one more"}).ok());

  const std::string text = info("commandstats");
  EXPECT_EQ(Calls(text, "multi"), 2) << text;
  EXPECT_EQ(Calls(text, "exec"), 2) << text;
  EXPECT_EQ(Calls(text, "xadd"), 51) << text;

  RedisReply first = redis.Command({"XRANGE", "events", "-", "+", "COUNT", "1"});
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(first->elements, 1u);
  EXPECT_EQ(std::string(first->element[0]->element[0]->str), "0-1");  // offset 0
  EXPECT_EQ(std::string(first->element[0]->element[1]->element[0]->str), "r");
  EXPECT_EQ(std::string(first->element[0]->element[1]->element[1]->str), "record-0");
}

TEST_F(RedisStreamsTest, RedisDownAnswersUnavailableQuicklyAndAcknowledgesNothing) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto buffer = Open(redis.url(), "events");
  ASSERT_NE(buffer, nullptr);
  ASSERT_TRUE(AppendAndWait(*buffer, {"stored"}).ok());
  redis.Stop();

  const auto start = std::chrono::steady_clock::now();
  Status s = AppendAndWait(*buffer, {"lost", "lost too"});
  // Unavailable when the connect failed; UnknownOutcome when the old connection took the
  // request before breaking (nothing says whether it ran).
  EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kUnknownOutcome)
      << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(buffer->Stats().next_offset, 1u);
  EXPECT_EQ(buffer->Read(0, 10, 1000, 0ms).status().code(), StatusCode::kUnavailable);

  // Nothing listens on the port any more: Open is refused too.
  RedisStreamsOptions options;
  options.url = redis.url();
  options.timeout = 1000ms;
  EXPECT_EQ(RedisStreams::Open(options).status().code(), StatusCode::kUnavailable);
}

TEST_F(RedisStreamsTest, MaxmemoryUnderNoevictionIsResourceExhaustedAndStoresNothing) {
  RedisTestServer redis(dir_.path() + "/redis", {"maxmemory 3mb"});
  ASSERT_TRUE(redis.ok());
  auto buffer = Open(redis.url(), "events");
  ASSERT_NE(buffer, nullptr);
  std::vector<std::string> batch(100, std::string(1000, 'x'));
  Status s;
  int ok_batches = 0;
  for (; ok_batches < 200; ++ok_batches) {  // 20 MB would be far past 3 MB
    s = AppendAndWait(*buffer, batch);
    if (!s.ok()) break;
  }
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("OOM"), std::string::npos) << s.ToString();
  EXPECT_GT(ok_batches, 0);
  // The refused batch left nothing: the stream holds exactly the acknowledged records.
  RedisReply len = redis.Command({"XLEN", "events"});
  ASSERT_NE(len, nullptr);
  EXPECT_EQ(static_cast<uint64_t>(len->integer), 100u * ok_batches);
  EXPECT_EQ(buffer->Stats().next_offset, 100u * ok_batches);

  // Committing frees memory in Redis, and appends succeed again.
  ASSERT_TRUE(buffer->Commit(buffer->Stats().next_offset).ok());
  ASSERT_NE(redis.Command({"MEMORY", "PURGE"}), nullptr);
  EXPECT_TRUE(AppendAndWait(*buffer, {"after commit"}).ok());
}

TEST_F(RedisStreamsTest, PasswordAndDbComeFromTheUrl) {
  RedisTestServer redis(dir_.path() + "/redis", {"requirepass s3cret"});
  ASSERT_TRUE(redis.ok());
  RedisStreamsOptions options;
  options.stream = "events";
  options.url = redis.url();  // no password
  EXPECT_EQ(RedisStreams::Open(options).status().code(), StatusCode::kUnauthenticated);
  options.url = redis.url(":wrong@");
  EXPECT_EQ(RedisStreams::Open(options).status().code(), StatusCode::kUnauthenticated);

  auto buffer = Open(redis.url(":s3cret@", "/3"), "events");
  ASSERT_NE(buffer, nullptr);
  ASSERT_TRUE(AppendAndWait(*buffer, {"a", "b"}).ok());
  auto records = buffer->Read(0, 10, 1000, 0ms);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(records->size(), 2u);

  RedisReply in_db0 = redis.Command({"XLEN", "events"}, "s3cret");
  ASSERT_NE(in_db0, nullptr);
  EXPECT_EQ(in_db0->integer, 0);  // the records went to db 3
}

TEST_F(RedisStreamsTest, ReopenRecoversOffsetsAndSizes) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  {
    auto buffer = Open(redis.url(), "events");
    ASSERT_NE(buffer, nullptr);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(AppendAndWait(*buffer, {std::string(10, 'a')}).ok());
    ASSERT_TRUE(buffer->Commit(4).ok());
  }
  auto buffer = Open(redis.url(), "events");
  ASSERT_NE(buffer, nullptr);
  BufferStats s = buffer->Stats();
  EXPECT_EQ(s.next_offset, 10u);
  EXPECT_EQ(s.committed_offset, 4u);
  EXPECT_EQ(s.used_bytes, 6 * (10 + RedisStreams::kRecordOverheadBytes));
  ASSERT_TRUE(AppendAndWait(*buffer, {"eleventh"}).ok());
  auto records = buffer->Read(4, 100, 100000, 0ms);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 7u);
  EXPECT_EQ(records->back().offset, 10u);
  EXPECT_EQ(records->back().payload, "eleventh");
}

TEST_F(RedisStreamsTest, RefusesAStreamWithForeignIds) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  ASSERT_NE(redis.Command({"XADD", "foreign", "*", "r", "x"}), nullptr);
  RedisStreamsOptions options;
  options.url = redis.url();
  options.stream = "foreign";
  EXPECT_EQ(RedisStreams::Open(options).status().code(), StatusCode::kCorruption);
}

std::unique_ptr<RedisStreams> OpenAs(const std::string& url, const std::string& stream,
                                     const std::string& consumer,
                                     std::chrono::milliseconds claim_after = 30s) {
  RedisStreamsOptions options;
  options.url = url;
  options.stream = stream;
  options.consumer = consumer;
  options.claim_after = claim_after;
  options.timeout = 1000ms;
  auto b = RedisStreams::Open(options);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(*b) : nullptr;
}

std::vector<uint64_t> Offsets(const std::vector<Record>& records) {
  std::vector<uint64_t> out;
  for (const Record& r : records) out.push_back(r.offset);
  return out;
}

TEST_F(RedisStreamsTest, TwoWritersShareOneDenseSequence) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a");
  auto b = OpenAs(redis.url(), "events", "b");
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(AppendAndWait(i % 2 ? *a : *b, {"x" + std::to_string(i), "y"}).ok());
  }
  auto records = a->Read(0, 1000, 1 << 20, 0ms);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 40u);
  for (size_t i = 0; i < records->size(); ++i) EXPECT_EQ((*records)[i].offset, i);
  // Each append stayed one contiguous unit: "xN" is always followed by its "y".
  for (size_t i = 0; i < records->size(); i += 2) EXPECT_EQ((*records)[i + 1].payload, "y");
  EXPECT_EQ(a->Stats().next_offset, 40u);
}

TEST_F(RedisStreamsTest, OneConsumerAtATimeAndPendingEntriesAreClaimed) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a");
  auto b = OpenAs(redis.url(), "events", "b");
  ASSERT_TRUE(a && b);
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back("r" + std::to_string(i));
  ASSERT_TRUE(AppendAndWait(*a, ten).ok());

  // a loads (takes the lease) and receives everything, acknowledging nothing.
  auto got = a->Read(0, 1000, 1 << 20, 0ms);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 10u);
  EXPECT_TRUE(a->HoldsLease());
  // b stands by while a holds the lease.
  auto standby = b->Read(0, 1000, 1 << 20, 50ms);
  EXPECT_EQ(standby.status().code(), StatusCode::kUnavailable) << standby.status().ToString();
  EXPECT_NE(standby.status().message().find("stands by"), std::string::npos);

  // a stored 0..2 in the hot store; b's loader, standing by, re-reads the store's offset.
  ASSERT_TRUE(b->Commit(3).ok());
  // a goes away with its ten entries pending in the group, 0..2 stored but not acknowledged
  // (its Close hands over the lease; a killed process's lease expires after claim_after
  // instead — tests/integration).
  a->Close();
  RedisReply pending = redis.Command({"XPENDING", "events", "sluice", "-", "+", "100", "a"});
  ASSERT_NE(pending, nullptr);
  ASSERT_EQ(pending->elements, 10u);

  // b takes over. a loaded while b stood by, so b is first told to re-read the store…
  auto took = b->Read(3, 1000, 1 << 20, 1s);
  EXPECT_EQ(took.status().code(), StatusCode::kAborted) << took.status().ToString();
  EXPECT_TRUE(b->HoldsLease());
  // …then the entries come back from offset 3 (the store's offset) on.
  auto claimed = b->Read(3, 1000, 1 << 20, 1s);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  EXPECT_EQ(Offsets(*claimed), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ((*claimed)[0].payload, "r3");
  RedisReply mine = redis.Command({"XPENDING", "events", "sluice", "-", "+", "100", "b"});
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->elements, 7u);
  ASSERT_TRUE(AppendAndWait(*b, {"r10"}).ok());
  auto next = b->Read(10, 1000, 1 << 20, 1s);  // then new entries through XREADGROUP
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Offsets(*next), (std::vector<uint64_t>{10}));

  ASSERT_TRUE(b->Commit(11).ok());
  RedisReply left = redis.Command({"XPENDING", "events", "sluice"});
  ASSERT_NE(left, nullptr);
  EXPECT_EQ(left->element[0]->integer, 0);  // everything acknowledged, a's 0..2 too
  RedisReply len = redis.Command({"XLEN", "events"});
  ASSERT_NE(len, nullptr);
  EXPECT_EQ(len->integer, 0);  // and trimmed
}

TEST_F(RedisStreamsTest, ALapsedLeaseAbortsTheNextRead) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a", 300ms);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(AppendAndWait(*a, {"one"}).ok());
  ASSERT_TRUE(a->Read(0, 10, 1 << 20, 0ms).ok());
  ASSERT_TRUE(a->HoldsLease());
  // Another consumer holds the key now, as after a's stall past the TTL.
  ASSERT_NE(redis.Command({"SET", "events:lease", "intruder", "PX", "10000"}), nullptr);
  for (int i = 0; i < 50 && a->HoldsLease(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(a->HoldsLease());
  auto r = a->Read(1, 10, 1 << 20, 0ms);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().ToString();
}

TEST_F(RedisStreamsTest, TrimKeepsWhatAnotherGroupStillNeeds) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(redis.Command({"XGROUP", "CREATE", "events", "audit", "0"}), nullptr);
  std::vector<std::string> ten(10, "payload");
  ASSERT_TRUE(AppendAndWait(*a, ten).ok());
  ASSERT_TRUE(a->Read(0, 100, 1 << 20, 0ms).ok());
  ASSERT_TRUE(a->Commit(10).ok());
  RedisReply len = redis.Command({"XLEN", "events"});
  EXPECT_EQ(len->integer, 10);              // "audit" has read nothing yet
  EXPECT_EQ(a->Stats().depth_records, 0u);  // our group's backlog is empty all the same

  // audit reads five and acknowledges them.
  ASSERT_NE(
      redis.Command({"XREADGROUP", "GROUP", "audit", "x", "COUNT", "5", "STREAMS", "events", ">"}),
      nullptr);
  ASSERT_NE(redis.Command({"XACK", "events", "audit", "0-1", "0-2", "0-3", "0-4", "0-5"}), nullptr);
  ASSERT_TRUE(AppendAndWait(*a, {"eleventh"}).ok());
  ASSERT_TRUE(a->Read(10, 100, 1 << 20, 0ms).ok());
  ASSERT_TRUE(a->Commit(11).ok());
  len = redis.Command({"XLEN", "events"});
  EXPECT_EQ(len->integer, 6);  // offsets 5..10: audit still needs them
}

TEST_F(RedisStreamsTest, WaitForMissingReplicasIsUnavailableButStored) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  RedisStreamsOptions options;
  options.url = redis.url();
  options.stream = "events";
  options.wait_replicas = 1;
  options.wait_timeout = 100ms;
  auto b = RedisStreams::Open(options);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Status st = AppendAndWait(**b, {"needs a replica"});
  EXPECT_EQ(st.code(), StatusCode::kUnknownOutcome) << st.ToString();
  EXPECT_NE(st.message().find("0 of 1 replicas"), std::string::npos) << st.ToString();
  RedisReply len = redis.Command({"XLEN", "events"});
  EXPECT_EQ(len->integer, 1);  // on the primary: a client retry is deduplicated by the loader
}

TEST_F(RedisStreamsTest, OffsetsAreNeverReusedAfterRedisLosesEntries) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a");
  ASSERT_NE(a, nullptr);
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back("r" + std::to_string(i));
  ASSERT_TRUE(AppendAndWait(*a, ten).ok());
  // As after a restart from an AOF without its last entries: only offsets 0..2 survive, and
  // the connections drop.
  ASSERT_NE(redis.Command({"DEL", "events"}), nullptr);
  for (const char* id : {"0-1", "0-2", "0-3"}) {
    ASSERT_NE(redis.Command({"XADD", "events", id, "r", "old"}), nullptr);
  }
  ASSERT_NE(redis.Command({"CLIENT", "KILL", "TYPE", "normal"}), nullptr);
  Status st = AppendAndWait(*a, {"lost connection"});  // may or may not notice the kill
  if (!st.ok()) {
    EXPECT_EQ(st.code(), StatusCode::kUnknownOutcome) << st.ToString();  // sent, then cut
  }
  ASSERT_TRUE(AppendAndWait(*a, {"new"}).ok());
  // Offsets 3..9 were handed out before: the new entry comes after them, never at 3.
  RedisReply last = redis.Command({"XREVRANGE", "events", "+", "-", "COUNT", "1"});
  ASSERT_NE(last, nullptr);
  ASSERT_EQ(last->elements, 1u);
  EXPECT_EQ(std::string(last->element[0]->element[1]->element[1]->str), "new");
  const std::string id = last->element[0]->element[0]->str;
  EXPECT_EQ(id, st.ok() ? "0-12" : "0-11");

  // A fresh process whose store is ahead of the stream moves the stream up too.
  auto b = OpenAs(redis.url(), "events", "b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->AdvanceTo(20).ok());
  ASSERT_TRUE(AppendAndWait(*b, {"after advance"}).ok());
  EXPECT_EQ(b->Stats().next_offset, 21u);
  auto read = b->Read(20, 10, 1 << 20, 0ms);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].payload, "after advance");

  // A store a billion offsets ahead: nothing is tracked for offsets that never existed.
  ASSERT_TRUE(b->AdvanceTo(1'000'000'000).ok());
  BufferStats s = b->Stats();
  EXPECT_EQ(s.committed_offset, 1'000'000'000u);
  EXPECT_EQ(s.depth_records, 0u);
  ASSERT_TRUE(AppendAndWait(*b, {"far ahead"}).ok());
  EXPECT_EQ(b->Stats().next_offset, 1'000'000'001u);
  EXPECT_EQ(b->Stats().depth_records, 1u);
}

TEST_F(RedisStreamsTest, QueuedAppendsShareRoundTripsAndEachStaysWhole) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto buffer = Open(redis.url(), "events");
  ASSERT_NE(buffer, nullptr);
  std::unique_ptr<redisContext, RedisContextDeleter> c(redisConnect("127.0.0.1", redis.port()));
  ASSERT_TRUE(c && !c->err);
  auto reads = [&] {
    RedisReply r(static_cast<redisReply*>(redisCommand(c.get(), "INFO stats")));
    return InfoNumber(r ? std::string(r->str, r->len) : std::string(), "total_reads_processed");
  };
  const long long before = reads();
  constexpr int kAppends = 200;
  std::atomic<int> ok{0};
  std::promise<void> all;
  std::atomic<int> left{kAppends};
  for (int i = 0; i < kAppends; ++i) {
    buffer->Append({"a" + std::to_string(i), "b" + std::to_string(i)}, [&](Status st) {
      if (st.ok()) ok.fetch_add(1);
      if (left.fetch_sub(1) == 1) all.set_value();
    });
  }
  all.get_future().wait();
  const long long after = reads();
  EXPECT_EQ(ok.load(), kAppends);
  // One round trip per append would be 200 reads; queued appends go out together.
  EXPECT_LT(after - before, kAppends / 4) << before << " -> " << after;
  auto records = buffer->Read(0, 1000, 1 << 20, 0ms);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u * kAppends);
  for (size_t i = 0; i < records->size(); i += 2) {  // each append's two records adjacent
    EXPECT_EQ((*records)[i].payload.substr(1), (*records)[i + 1].payload.substr(1));
  }
}

TEST_F(RedisStreamsTest, AStandbyWithAStaleOffsetIsToldToResumeFromTheStore) {
  RedisTestServer redis(dir_.path() + "/redis");
  ASSERT_TRUE(redis.ok());
  auto a = OpenAs(redis.url(), "events", "a");
  auto b = OpenAs(redis.url(), "events", "b");  // read the store's offset 0, then stood by
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(AppendAndWait(*a, std::vector<std::string>(10, "x")).ok());
  ASSERT_TRUE(a->Read(0, 100, 1 << 20, 0ms).ok());
  ASSERT_TRUE(a->Commit(10).ok());  // a's store has them; the stream is trimmed
  a->Close();
  // b refreshes its view (as its writer does every second) and reads from its stale offset.
  ASSERT_TRUE(AppendAndWait(*b, {"eleventh"}).ok());
  for (int i = 0; i < 40 && b->Stats().committed_offset < 10; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(b->Stats().committed_offset, 10u);
  auto stale = b->Read(0, 100, 1 << 20, 0ms);
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted) << stale.status().ToString();
  auto fresh = b->Read(10, 100, 1 << 20, 1s);  // from the store's offset: fine
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(Offsets(*fresh), (std::vector<uint64_t>{10}));
}

}  // namespace
}  // namespace sluice::buffer
