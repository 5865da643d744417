#include "loader/loader.h"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "buffer/memory_buffer.h"
#include "event/event.h"

namespace sluice::loader {
namespace {

// A HotStore fake: keeps committed batches in memory, can be told to fail commits.
class FakeStore : public store::HotStore {
 public:
  Status CommitBatch(const store::Batch& batch) override {
    std::lock_guard lock(mu_);
    if (fail_next_ > 0) {
      --fail_next_;
      return Status::IOError("injected commit failure");
    }
    for (const auto& e : batch.events) {
      events.push_back(e);
      max_received = std::max(max_received, e.received_at_us);
    }
    for (const auto& r : batch.rejections) rejections.push_back(r);
    for (const auto& r : batch.rollups) rollup[{r.minute_us, r.type, r.event}] += r.count;
    offsets[batch.shard] = batch.end_offset;
    ++commits;
    return Status::OK();
  }
  Result<uint64_t> CommittedOffset(const std::string& shard) override {
    std::lock_guard lock(mu_);
    return offsets[shard];
  }
  Result<int64_t> MaxReceivedAt() override {
    std::lock_guard lock(mu_);
    return max_received;
  }
  Result<std::vector<store::WindowInfo>> Windows() override {
    return std::vector<store::WindowInfo>{};
  }
  Result<uint64_t> ExportWindowToParquet(int64_t, const std::string&,
                                         const store::ParquetOptions&) override {
    return Status::NotFound("fake");
  }
  Status MarkExported(int64_t, uint64_t) override { return Status::NotFound("fake"); }
  Status DropWindow(int64_t) override { return Status::NotFound("fake"); }
  Status ForEachEventIdSince(int64_t since_us,
                             const std::function<void(std::string_view)>& fn) override {
    std::lock_guard lock(mu_);
    for (const auto& e : events) {
      if (e.received_at_us >= since_us) fn(e.event_id);
    }
    return Status::OK();
  }
  Result<uint64_t> DiskBytes() override { return uint64_t{0}; }

  size_t EventCount() {
    std::lock_guard lock(mu_);
    return events.size();
  }
  void FailNext(int n) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
  }

  std::mutex mu_;
  std::vector<event::Event> events;
  std::vector<event::Rejection> rejections;
  std::map<std::tuple<int64_t, std::string, std::string>, int64_t> rollup;
  std::map<std::string, uint64_t> offsets;
  int64_t max_received = 0;
  int commits = 0;
  int fail_next_ = 0;
};

constexpr int64_t kT0 = 1'714'564'800'000'000;  // 2024-05-01T12:00:00Z

event::Event Ev(const std::string& id, int64_t received_at, const std::string& name = "E") {
  event::Event e;
  e.event_id = id;
  e.type = "track";
  e.event = name;
  e.user_id = "u";
  e.event_time_us = received_at;
  e.received_at_us = received_at;
  return e;
}

void Append(buffer::Buffer& buf, std::vector<std::string> records) {
  std::promise<Status> done;
  buf.Append(std::move(records), [&](Status st) { done.set_value(st); });
  ASSERT_TRUE(done.get_future().get().ok());
}

LoaderOptions Fast() {
  LoaderOptions o;
  o.max_batch_delay = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  return o;
}

TEST(Loader, DrainsEverythingWithRollupsAndQuarantine) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  Append(buf, {event::EncodeRecord(Ev("a", kT0, "View")), event::EncodeRecord(Ev("b", kT0 + 1, "View")),
               event::EncodeRecord(Ev("c", kT0 + 61'000'000, "Buy")),
               event::EncodeRecord(event::Rejection{kT0, "web", "bad", "{}"}), "garbage-record"});
  Loader loader(Fast(), &buf, &store);
  ASSERT_TRUE(loader.DrainOnce().ok());
  EXPECT_EQ(store.events.size(), 3u);
  ASSERT_EQ(store.rejections.size(), 2u);
  EXPECT_EQ(store.rejections[0].error, "bad");
  EXPECT_NE(store.rejections[1].error.find("undecodable buffer record at offset 4"),
            std::string::npos);
  EXPECT_EQ(store.rejections[1].body, "garbage-record");
  EXPECT_EQ((store.rollup[{kT0, "track", "View"}]), 2);
  EXPECT_EQ((store.rollup[{kT0 + 60'000'000, "track", "Buy"}]), 1);
  EXPECT_EQ(store.offsets["disk"], 5u);
  EXPECT_EQ(buf.Stats().committed_offset, 5u);
  EXPECT_EQ(loader.Stats().max_received_at_us, kT0 + 61'000'000);
}

TEST(Loader, DropsRetriesWithinWindowAcrossBatchesAndRestarts) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  Append(buf, {event::EncodeRecord(Ev("x", kT0)), event::EncodeRecord(Ev("x", kT0 + 1))});
  {
    Loader loader(Fast(), &buf, &store);
    ASSERT_TRUE(loader.DrainOnce().ok());
    EXPECT_EQ(loader.Stats().duplicates, 1u);  // twice in one batch
    Append(buf, {event::EncodeRecord(Ev("x", kT0 + 2)), event::EncodeRecord(Ev("y", kT0 + 3))});
    ASSERT_TRUE(loader.DrainOnce().ok());
    EXPECT_EQ(loader.Stats().duplicates, 2u);  // again in a later batch
  }
  // A new loader (a restart) rebuilds its memory from the store.
  Append(buf, {event::EncodeRecord(Ev("y", kT0 + 4)), event::EncodeRecord(Ev("z", kT0 + 5))});
  Loader again(Fast(), &buf, &store);
  ASSERT_TRUE(again.DrainOnce().ok());
  EXPECT_EQ(again.Stats().duplicates, 1u);
  std::map<std::string, int> ids;
  for (const auto& e : store.events) ids[e.event_id]++;
  EXPECT_EQ(ids, (std::map<std::string, int>{{"x", 1}, {"y", 1}, {"z", 1}}));
  // Outside the window a reused id is stored again.
  LoaderOptions o = Fast();
  o.dedup_window = std::chrono::seconds(10);
  Append(buf, {event::EncodeRecord(Ev("late", kT0 + 6)),
               event::EncodeRecord(Ev("filler", kT0 + 60'000'000)),
               event::EncodeRecord(Ev("late", kT0 + 60'000'001))});
  Loader third(o, &buf, &store);
  ASSERT_TRUE(third.DrainOnce().ok());
  ids.clear();
  for (const auto& e : store.events) ids[e.event_id]++;
  EXPECT_EQ(ids["late"], 2);
}

TEST(Loader, RestartResumesAtTheStoresOffsetExactlyOnce) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  for (int i = 0; i < 10; ++i) Append(buf, {event::EncodeRecord(Ev("e" + std::to_string(i), kT0 + i))});
  {
    LoaderOptions o = Fast();
    o.max_batch_records = 4;
    Loader loader(o, &buf, &store);
    ASSERT_TRUE(loader.DrainOnce().ok());
  }
  EXPECT_EQ(store.events.size(), 10u);
  EXPECT_GE(store.commits, 3);
  // The store is ahead of what the buffer was told (as after a crash between the two
  // commits): nothing is loaded twice.
  Loader again(Fast(), &buf, &store);
  ASSERT_TRUE(again.DrainOnce().ok());
  EXPECT_EQ(store.events.size(), 10u);
  EXPECT_EQ(again.Stats().duplicates, 0u);
}

TEST(Loader, FailedCommitsAreRetriedWithoutLossOrFalseDuplicates) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  store.FailNext(3);
  Loader loader(Fast(), &buf, &store);
  ASSERT_TRUE(loader.Start().ok());
  Append(buf, {event::EncodeRecord(Ev("r1", kT0)), event::EncodeRecord(Ev("r2", kT0 + 1))});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.EventCount() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  loader.Stop();
  EXPECT_EQ(store.EventCount(), 2u);
  EXPECT_EQ(loader.Stats().commit_errors, 3u);
  EXPECT_EQ(loader.Stats().duplicates, 0u);
  // DrainOnce reports a failure instead of retrying forever.
  store.FailNext(1);
  Append(buf, {event::EncodeRecord(Ev("r3", kT0 + 2))});
  Loader once(Fast(), &buf, &store);
  Status st = once.DrainOnce();
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("injected commit failure"), std::string::npos);
}

TEST(Loader, AFailedDrainForgetsTheIdsItPreparedAndTheNextDrainStoresThem) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  for (int i = 0; i < 9; ++i) {
    Append(buf, {event::EncodeRecord(Ev("p" + std::to_string(i), kT0 + i))});
  }
  LoaderOptions o = Fast();
  o.max_batch_records = 3;  // three batches: the second is prepared while the first commits
  Loader loader(o, &buf, &store);
  store.FailNext(1);
  EXPECT_EQ(loader.DrainOnce().code(), StatusCode::kIOError);
  EXPECT_EQ(store.EventCount(), 0u);
  // The same loader again: the ids of the batches it had prepared are not taken for retries.
  ASSERT_TRUE(loader.DrainOnce().ok());
  EXPECT_EQ(store.EventCount(), 9u);
  EXPECT_EQ(loader.Stats().duplicates, 0u);
  EXPECT_EQ(store.commits, 3);
  EXPECT_EQ(store.offsets["disk"], 9u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(store.events[i].event_id, "p" + std::to_string(i));
}

TEST(Loader, WatermarkIsLoadedPositionOrNowWhenDrained) {
  buffer::MemoryBuffer buf(1 << 30);
  FakeStore store;
  ManualClock clock(kT0 + 3'600'000'000);
  Loader loader(Fast(), &buf, &store, &clock);
  EXPECT_EQ(loader.Watermark(), 0);  // nothing loaded, buffer not yet seen empty
  Append(buf, {event::EncodeRecord(Ev("w", kT0 + 5))});
  ASSERT_TRUE(loader.DrainOnce().ok());  // loads, then finds the buffer empty
  EXPECT_EQ(loader.Stats().max_received_at_us, kT0 + 5);
  EXPECT_EQ(loader.Watermark(), kT0 + 3'600'000'000);
}

}  // namespace
}  // namespace sluice::loader
