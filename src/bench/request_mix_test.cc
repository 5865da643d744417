#include "bench/request_mix.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>
#include <vector>

namespace sluice::bench {
namespace {

TEST(RequestMixTest, SeedMixProportionsAndSizesOver100kDraws) {
  const RequestMix mix = RequestMix::Seed(42);
  ASSERT_TRUE(mix.IsSeed());
  constexpr uint64_t kDraws = 100'000;
  std::map<RequestKind, uint64_t> kinds;
  std::map<RequestKind, std::map<int, uint64_t>> sizes;
  uint64_t events = 0;
  for (uint64_t k = 0; k < kDraws; ++k) {
    const RequestShape s = mix.Draw(k);
    ++kinds[s.kind];
    ++sizes[s.kind][s.events];
    events += static_cast<uint64_t>(s.events);
    switch (s.kind) {
      case RequestKind::kTrack:
        ASSERT_EQ(s.events, 1);
        break;
      case RequestKind::kBrowserBatch:
        ASSERT_GE(s.events, 5);
        ASSERT_LE(s.events, 20);
        break;
      case RequestKind::kServerBatch:
        ASSERT_GE(s.events, 100);
        ASSERT_LE(s.events, 500);
        break;
      case RequestKind::kFixed:
        FAIL() << "a fixed request in the seed mix";
    }
  }
  // 100k draws: the standard deviation of a share is under 0.16 points; 0.7 points is > 4 sigma.
  auto share = [&](RequestKind k) { return 100.0 * static_cast<double>(kinds[k]) / kDraws; };
  EXPECT_NEAR(share(RequestKind::kTrack), 60.0, 0.7);
  EXPECT_NEAR(share(RequestKind::kBrowserBatch), 25.0, 0.7);
  EXPECT_NEAR(share(RequestKind::kServerBatch), 15.0, 0.7);
  // Every size of each range occurs, including both ends (uniform: ~1560 and ~37 per size).
  EXPECT_EQ(sizes[RequestKind::kBrowserBatch].size(), 16u);
  EXPECT_EQ(sizes[RequestKind::kServerBatch].size(), 401u);
  EXPECT_EQ(sizes[RequestKind::kBrowserBatch].begin()->first, 5);
  EXPECT_EQ(sizes[RequestKind::kBrowserBatch].rbegin()->first, 20);
  EXPECT_EQ(sizes[RequestKind::kServerBatch].begin()->first, 100);
  EXPECT_EQ(sizes[RequestKind::kServerBatch].rbegin()->first, 500);
  // The mean request matches MeanEvents() (48.725) within 2%.
  EXPECT_NEAR(mix.MeanEvents(), 48.725, 1e-9);
  EXPECT_NEAR(static_cast<double>(events) / kDraws, mix.MeanEvents(), 0.02 * mix.MeanEvents());
}

TEST(RequestMixTest, SameSeedSameDrawsOtherSeedOtherDraws) {
  const RequestMix a = RequestMix::Seed(7), b = RequestMix::Seed(7), c = RequestMix::Seed(8);
  int differing = 0;
  for (uint64_t k = 0; k < 1000; ++k) {
    EXPECT_EQ(a.Draw(k).kind, b.Draw(k).kind);
    EXPECT_EQ(a.Draw(k).events, b.Draw(k).events);
    differing += a.Draw(k).events != c.Draw(k).events;
  }
  EXPECT_GT(differing, 400);
}

TEST(RequestMixTest, FixedMixIsTheBatch) {
  const RequestMix mix = RequestMix::Fixed(100);
  EXPECT_FALSE(mix.IsSeed());
  EXPECT_EQ(mix.MeanEvents(), 100.0);
  for (uint64_t k = 0; k < 100; ++k) {
    EXPECT_EQ(mix.Draw(k).kind, RequestKind::kFixed);
    EXPECT_EQ(mix.Draw(k).events, 100);
  }
  EXPECT_EQ(RequestKindName(RequestKind::kTrack), "track");
  EXPECT_EQ(RequestKindName(RequestKind::kBrowserBatch), "browser_batch");
  EXPECT_EQ(RequestKindName(RequestKind::kServerBatch), "server_batch");
}

// Requests taken from several threads tile the seqs: consecutive within a request, no gap and
// no overlap between requests, and request k has the k-th draw.
TEST(RequestMixTest, SequencerTilesTheSeqsAcrossThreads) {
  const RequestMix mix = RequestMix::Seed(3);
  RequestSequencer sequencer(mix);
  constexpr int kThreads = 4, kPerThread = 5000;
  std::vector<std::vector<RequestSequencer::Next>> taken(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) taken[t].push_back(sequencer.Take());
      });
    }
  }
  std::map<uint64_t, RequestSequencer::Next> by_index;
  for (const auto& list : taken) {
    for (const auto& n : list) EXPECT_TRUE(by_index.emplace(n.index, n).second) << n.index;
  }
  ASSERT_EQ(by_index.size(), size_t{kThreads} * kPerThread);
  uint64_t next_seq = 0, k = 0;
  for (const auto& [index, n] : by_index) {
    ASSERT_EQ(index, k++);
    EXPECT_EQ(n.first_seq, next_seq) << "request " << index;
    EXPECT_EQ(n.shape.events, mix.Draw(index).events);
    EXPECT_EQ(n.shape.kind, mix.Draw(index).kind);
    next_seq += static_cast<uint64_t>(n.shape.events);
  }
  // The next request starts right after the last one.
  EXPECT_EQ(sequencer.Take().first_seq, next_seq);
}

}  // namespace
}  // namespace sluice::bench
