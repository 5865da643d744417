// Redis Streams buffer failures through the real binary (issue: "a kill -9 of redis-server with
// AOF everysec during load, restarted: the number of acknowledged events missing is reported;
// with --redis-wait and a replica, zero").
//
// AofKill: redis-server (appendonly yes, appendfsync everysec) is killed with SIGKILL during a
// load of ~4,000 events/s and restarted from the same directory and port 2 s later, while sluice
// keeps running. Each test prints a "[ REPORT ]" line with the acknowledged events the store is
// missing, and asserts that none is stored twice, that every event acknowledged after the
// restart is stored (offsets lost with the AOF's tail are never handed out again), and that at
// most two seconds of load went missing.
//   A SIGKILL of the process alone loses only what Redis had not yet write()n to the AOF (the
//   kernel keeps the rest): usually nothing, but while a background fsync is slow (a busy
//   disk) everysec postpones the write() for up to 2 s and still answers, so a few requests'
//   worth can go. What everysec may lose at most is the last second or two of writes the kernel
//   had not flushed when the HOST goes down; the *PowerLoss tests emulate that by cutting the
//   AOF back to the size it had one second before the kill.
//   With the loader running, events it had already loaded are safe in DuckDB whatever Redis
//   lost; with --loader=false until after the restart, the backlog lived only in Redis.
// RedisFailover: a primary and a replica, sluice with --redis-wait 1. The primary is killed; the
// replica is promoted; the old primary comes back as its replica, resyncs, and is promoted back
// on the same address. Every acknowledged event was on the replica before its ack: none is
// missing. The ReplicaPromotedWhilePrimaryTakesWrites tests first promote the replica while the
// primary still stores events (answered 503: WAIT finds no replica), which the failover then
// discards; with the loader running, it has loaded some of them, and the restored primary's
// stream is older than what the writer's live connection saw.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "buffer/redis_test_server.h"
#include "common/temp_dir.h"
#include "http/test_client.h"
#include "load.h"
#include "query_helpers.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

using buffer::testing::RedisReply;
using buffer::testing::RedisTestServer;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ~4,000 events/s: 4 clients, 50 events a request, 50 ms between a client's requests.
const LoadOptions kLoad{.clients = 4, .batch = 50, .pad = "", .pause = milliseconds(50)};

bool WaitUntil(const std::function<bool()>& cond, Clock::duration deadline) {
  const auto until = Clock::now() + deadline;
  while (!cond()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

bool WaitForAcked(Load& load, size_t n, seconds deadline = seconds(30)) {
  return WaitUntil([&] { return load.Acked() >= n; }, deadline);
}

// INFO `section` of `redis` as text ("" when it does not answer).
std::string Info(const RedisTestServer& redis, const std::string& section) {
  RedisReply r = redis.Command({"INFO", section});
  if (!r || r->type != REDIS_REPLY_STRING) return "";
  return std::string(r->str, r->len);
}

// The value of "name:value" in an INFO text ("" when absent).
std::string InfoField(const std::string& info, const std::string& name) {
  std::istringstream in(info);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

// `replica` is linked to its primary `primary` and has replayed all it was sent.
bool InSync(const RedisTestServer& replica, const RedisTestServer& primary) {
  const std::string r = Info(replica, "replication");
  const std::string p = Info(primary, "replication");
  return InfoField(r, "role") == "slave" && InfoField(r, "master_link_status") == "up" &&
         InfoField(p, "role") == "master" && !InfoField(p, "master_repl_offset").empty() &&
         InfoField(r, "slave_repl_offset") == InfoField(p, "master_repl_offset");
}

bool IsOk(const RedisReply& r) {
  return r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "OK";
}

// Samples the size of the AOF file Redis appends to (Redis 7 multi-part AOF: the "type i" file
// of appendonlydir/appendonly.aof.manifest) every 10 ms, so that after a kill the file can be cut
// back to what it held a second earlier: what `appendfsync everysec` may leave on disk when the
// host loses power (a SIGKILL of the process alone loses nothing it had written).
class AofTail {
 public:
  explicit AofTail(const std::string& redis_dir) : dir_(redis_dir + "/appendonlydir") {
    thread_ = std::thread([this] { Sample(); });
  }
  ~AofTail() { StopSampling(); }

  void StopSampling() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Cuts the file back to the last size sampled at or before `at`; returns the bytes cut
  // (-1 when no sample is that old or the file cannot be truncated).
  long long CutTo(Clock::time_point at) {
    StopSampling();
    uintmax_t keep = 0;
    bool found = false;
    for (const auto& [when, size] : samples_) {
      if (when > at) break;
      keep = size;
      found = true;
    }
    const std::string path = dir_ + "/" + IncrFile();
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (!found || ec || keep > size) return -1;
    std::filesystem::resize_file(path, keep, ec);
    return ec ? -1 : static_cast<long long>(size - keep);
  }

 private:
  std::string IncrFile() const {
    std::ifstream manifest(dir_ + "/appendonly.aof.manifest");
    std::string line, file;
    while (std::getline(manifest, line)) {
      std::istringstream words(line);
      std::string key, value, name;
      bool incr = false;
      while (words >> key >> value) {
        if (key == "file") name = value;
        if (key == "type" && value == "i") incr = true;
      }
      if (incr) file = name;
    }
    return file;
  }
  void Sample() {
    std::string file;
    while (!stop_) {
      if (file.empty()) file = IncrFile();
      std::error_code ec;
      const uintmax_t size = std::filesystem::file_size(dir_ + "/" + file, ec);
      if (!file.empty() && !ec) samples_.emplace_back(Clock::now(), size);
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  const std::string dir_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::deque<std::pair<Clock::time_point, uintmax_t>> samples_;  // written by thread_ only
};

// Every buffer shard's loader has nothing left to load (from /readyz); `body` gets the last
// answer.
bool WaitLoaded(http::TestClient& c, seconds deadline, std::string* body) {
  return WaitUntil(
      [&] {
        auto r = c.Get("/readyz");
        if (!r.ok()) return false;
        *body = r->body;
        simdjson::dom::parser parser;
        simdjson::dom::array shards;
        if (parser.parse(r->body)["shards"].get_array().get(shards)) return false;
        size_t n = 0;
        for (auto shard : shards) {
          uint64_t depth = 1;
          bool caught_up = false;
          if (shard["depth_events"].get(depth) || shard["caught_up"].get(caught_up)) return false;
          if (depth != 0 || !caught_up) return false;
          ++n;
        }
        return n > 0;
      },
      deadline);
}

// How the store's events compare with what the clients were told.
struct Tally {
  size_t acked = 0;
  size_t stored = 0;        // rows
  size_t distinct = 0;      // distinct event_ids
  size_t missing = 0;       // acknowledged, not stored
  size_t missing_late = 0;  // acknowledged after the restart (or failover), not stored
};

Tally Count(http::TestClient& c, const std::set<std::string>& acked,
            const std::set<std::string>& acked_before) {
  Tally t;
  t.acked = acked.size();
  QueryResponse q = Query(c, "SELECT event_id FROM events");
  EXPECT_EQ(q.status, 200) << q.body;
  std::set<std::string> ids;
  for (auto& row : q.rows) ids.insert(row.at(0));
  t.stored = q.rows.size();
  t.distinct = ids.size();
  for (const std::string& id : acked) {
    if (ids.count(id) != 0) continue;
    ++t.missing;
    if (acked_before.count(id) == 0) ++t.missing_late;
  }
  return t;
}

std::vector<std::string> With(std::vector<std::string> args, const std::string& more) {
  args.push_back(more);
  return args;
}

struct AofKillCase {
  const char* name;
  bool loader_during_outage;  // false: --loader=false until after the restart
  bool power_loss;            // cut the AOF back by its last second after the kill
};

void RunAofKill(const AofKillCase& tc) {
  TempDir dir("sluice-redis-failover");
  // No AOF rewrite during the test: the file sampled is the file cut.
  RedisTestServer redis(dir.path() + "/redis", {"auto-aof-rewrite-percentage 0"});
  ASSERT_TRUE(redis.ok());
  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--buffer", redis.url(), "--query-max-rows", "10000000"};
  auto proc =
      SluiceProcess::Start(data, tc.loader_during_outage ? args : With(args, "--loader=false"));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  std::unique_ptr<AofTail> tail;
  if (tc.power_loss) tail = std::make_unique<AofTail>(redis.dir());

  std::set<std::string> acked, before;
  size_t acked_at_kill = 0;
  double rate = 0;
  long long cut = 0;
  int refused = 0;
  {
    const auto start = Clock::now();
    Load load((*proc)->address(), kLoad);
    ASSERT_TRUE(WaitForAcked(load, 10'000)) << load.Acked() << " acked; " << (*proc)->Log();
    acked_at_kill = load.Acked();
    const auto killed_at = Clock::now();
    rate = double(acked_at_kill) / std::chrono::duration<double>(killed_at - start).count();
    ASSERT_TRUE(redis.Kill9());
    if (tail) {
      cut = tail->CutTo(killed_at - seconds(1));
      ASSERT_GT(cut, 0) << "could not cut the AOF back by one second";
    }
    // Down for 2 s: every request is refused (--spill none), none acknowledged.
    std::this_thread::sleep_for(milliseconds(200));
    const size_t acked_while_down = load.Acked();
    std::this_thread::sleep_for(milliseconds(1800));
    before = load.AckedIds();
    EXPECT_EQ(before.size(), acked_while_down) << "acknowledged while redis-server was down";
    ASSERT_TRUE(redis.Restart());
    // A few more seconds of load on the restarted server.
    ASSERT_TRUE(WaitForAcked(load, before.size() + 8'000))
        << "acknowledgements did not resume after the restart: " << (*proc)->Log();
    load.Stop();
    acked = load.AckedIds();
    refused = load.refused();
  }
  if (!tc.loader_during_outage) {
    EXPECT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();
    proc = SluiceProcess::Start(data, args);
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  }
  http::TestClient c((*proc)->address());
  std::string ready;
  ASSERT_TRUE(WaitLoaded(c, seconds(60), &ready)) << ready << "\n" << (*proc)->Log();
  const Tally t = Count(c, acked, before);

  std::printf(
      "[ REPORT ] %s: acked %zu, missing %zu (= %.0f ms of load at %.0f events/s); "
      "acked after the restart %zu, of them missing %zu; stored %zu rows, %zu distinct%s\n",
      tc.name, t.acked, t.missing, 1000.0 * double(t.missing) / rate, rate,
      acked.size() - before.size(), t.missing_late, t.stored, t.distinct,
      tc.power_loss ? (", AOF cut by " + std::to_string(cut) + " bytes").c_str() : "");
  std::fflush(stdout);
  EXPECT_EQ(t.stored, t.distinct) << "events stored twice";
  EXPECT_EQ(t.missing_late, 0u) << "events acknowledged after the restart are missing: offsets "
                                   "were reused or the loader skipped them\n"
                                << (*proc)->Log();
  EXPECT_LE(double(t.missing), rate * 2) << "more than 2 s of acknowledged load lost";
  if (tc.power_loss && !tc.loader_during_outage) {
    // The last second was acknowledged, never loaded, and cut from the AOF: the report must
    // show it (else this test did not emulate anything).
    EXPECT_GT(t.missing, 0u);
  }
  // Unacknowledged events stored: at most those of refused requests and of requests in flight.
  EXPECT_LE(t.distinct, t.acked - t.missing + size_t(refused + kLoad.clients) * kLoad.batch);
}

class AofKill : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_REDIS_OR_SKIP(); }
};

TEST_F(AofKill, LoaderRunning) {
  RunAofKill({"kill -9, loader running", /*loader_during_outage=*/true, /*power_loss=*/false});
}

TEST_F(AofKill, BacklogOnlyInRedis) {
  RunAofKill({"kill -9, backlog only in Redis", false, false});
}

TEST_F(AofKill, LoaderRunningPowerLoss) {
  RunAofKill({"kill -9 + AOF's last second cut (power loss), loader running", true, true});
}

TEST_F(AofKill, BacklogOnlyInRedisPowerLoss) {
  RunAofKill({"kill -9 + AOF's last second cut (power loss), backlog only in Redis", false, true});
}

// The offset after the stream's last generated entry (XINFO STREAM), -1 when unknown.
long long StreamNext(const RedisTestServer& redis) {
  RedisReply r = redis.Command({"XINFO", "STREAM", "sluice:events"});
  if (!r || r->type != REDIS_REPLY_ARRAY) return -1;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (std::string(r->element[i]->str, r->element[i]->len) != "last-generated-id") continue;
    const std::string id(r->element[i + 1]->str, r->element[i + 1]->len);  // "0-N": offset N-1
    return id.rfind("0-", 0) == 0 ? std::stoll(id.substr(2)) : -1;
  }
  return -1;
}

// A primary P and a replica R; sluice --redis-wait 1 on P, loader off, under load. Then P fails:
// with `split`, R is first promoted while P still takes writes (a partition: P stores entries R
// never gets, and answers them 503 since WAIT finds no replica), then P is killed; without it,
// P is killed and R promoted. P's process comes back as R's replica (a full resync replaces its
// data), then is promoted back on its address with R following it. sluice restarts with the
// loader: not one acknowledged event may be missing.
void RunFailover(bool split, bool loader = false) {
  TempDir dir("sluice-redis-failover");
  // Full resyncs start at once (Redis 7 waits 5 s for more replicas by default).
  const std::string no_delay = "repl-diskless-sync-delay 0";
  RedisTestServer primary(dir.path() + "/primary", {no_delay});
  ASSERT_TRUE(primary.ok());
  const std::string replica_of_primary = "replicaof 127.0.0.1 " + std::to_string(primary.port());
  RedisTestServer replica(dir.path() + "/replica", {no_delay, replica_of_primary});
  ASSERT_TRUE(replica.ok());
  ASSERT_TRUE(WaitUntil([&] { return InSync(replica, primary); }, seconds(20)))
      << Info(replica, "replication");

  const std::string data = dir.path() + "/data";
  const std::vector<std::string> args = {"--buffer", primary.url(),      "--redis-wait",
                                         "1",        "--query-max-rows", "10000000"};
  auto proc = SluiceProcess::Start(data, loader ? args : With(args, "--loader=false"));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();

  std::set<std::string> acked, before;
  int refused = 0;
  long long only_on_primary = 0;  // entries P stored after the split that R never got
  {
    Load load((*proc)->address(), kLoad);
    ASSERT_TRUE(WaitForAcked(load, 10'000)) << load.Acked() << " acked; " << (*proc)->Log();
    size_t acked_at_failure = 0;
    if (split) {
      ASSERT_TRUE(IsOk(replica.Command({"REPLICAOF", "NO", "ONE"})));
      std::this_thread::sleep_for(milliseconds(200));  // answers already on their way
      acked_at_failure = load.Acked();
      // Every client has had a request time out in WAIT (answered 503) since.
      const int refused_at_split = load.refused();
      ASSERT_TRUE(WaitUntil([&] { return load.refused() >= refused_at_split + kLoad.clients; },
                            seconds(10)))
          << (*proc)->Log();
      only_on_primary = StreamNext(primary) - StreamNext(replica);
      EXPECT_GT(only_on_primary, 0) << "the primary stored nothing after the split";
      ASSERT_TRUE(primary.Kill9());
    } else {
      ASSERT_TRUE(primary.Kill9());
      std::this_thread::sleep_for(milliseconds(200));  // answers already on their way
      acked_at_failure = load.Acked();
      ASSERT_TRUE(IsOk(replica.Command({"REPLICAOF", "NO", "ONE"})));
    }
    // The old primary's process comes back as the new primary's replica (it loads its AOF,
    // then a full resync replaces that with the replica's data)…
    ASSERT_TRUE(
        primary.RestartWith({no_delay, "replicaof 127.0.0.1 " + std::to_string(replica.port())}));
    ASSERT_TRUE(WaitUntil([&] { return InSync(primary, replica); }, seconds(30)))
        << Info(primary, "replication");
    // Until now the address served no writable primary with a replica: nothing acknowledged.
    before = load.AckedIds();
    EXPECT_EQ(before.size(), acked_at_failure);
    // … and is promoted back on its address, the other following it again.
    ASSERT_TRUE(IsOk(primary.Command({"REPLICAOF", "NO", "ONE"})));
    ASSERT_TRUE(IsOk(replica.Command({"REPLICAOF", "127.0.0.1", std::to_string(primary.port())})));
    ASSERT_TRUE(WaitUntil([&] { return InSync(replica, primary); }, seconds(30)))
        << Info(replica, "replication");
    ASSERT_TRUE(WaitForAcked(load, before.size() + 8'000))
        << "acknowledgements did not resume after the failover: " << (*proc)->Log();
    load.Stop();
    acked = load.AckedIds();
    refused = load.refused();
  }
  if (!loader) {
    EXPECT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();
    proc = SluiceProcess::Start(data, args);
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  }
  http::TestClient c((*proc)->address());
  std::string ready;
  ASSERT_TRUE(WaitLoaded(c, seconds(60), &ready)) << ready << "\n" << (*proc)->Log();
  const Tally t = Count(c, acked, before);
  std::printf(
      "[ REPORT ] failover with --redis-wait 1%s: acked %zu, missing %zu (of them %zu "
      "acked after the failover); %d requests refused%s; stored %zu rows, %zu distinct\n",
      split ? ", replica promoted while the primary still took writes" : "", t.acked, t.missing,
      t.missing_late, refused,
      split ? (", " + std::to_string(only_on_primary) +
               " entries only on the old primary (answered 503), discarded")
                  .c_str()
            : "",
      t.stored, t.distinct);
  std::fflush(stdout);
  EXPECT_EQ(t.missing, 0u) << (*proc)->Log();
  EXPECT_EQ(t.stored, t.distinct) << "events stored twice";
  EXPECT_LE(t.distinct, t.acked + size_t(refused + kLoad.clients) * kLoad.batch);
}

TEST(RedisFailover, KillPrimaryPromoteReplica) {
  SLUICE_REDIS_OR_SKIP();
  RunFailover(/*split=*/false);
}

TEST(RedisFailover, ReplicaPromotedWhilePrimaryTakesWrites) {
  SLUICE_REDIS_OR_SKIP();
  RunFailover(/*split=*/true);
}

// The loader reads (unacknowledged) entries the replica never got; after the failover the
// stream is older under the writer's live connection: offsets must not be reused.
TEST(RedisFailover, ReplicaPromotedWhilePrimaryTakesWritesLoaderRunning) {
  SLUICE_REDIS_OR_SKIP();
  RunFailover(/*split=*/true, /*loader=*/true);
}

}  // namespace
}  // namespace sluice::testing
