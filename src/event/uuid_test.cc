#include "event/uuid.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sluice::event {
namespace {

constexpr int64_t kMs = 1'714'564'800'123;  // an arbitrary wall-clock millisecond

uint64_t TimestampMs(const std::string& id) {
  return std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
}

uint32_t Counter(const std::string& id) {
  return static_cast<uint32_t>(std::stoul(id.substr(15, 3), nullptr, 16));
}

TEST(Uuid7, CanonicalFormWithVersionAndVariant) {
  ManualClock clock(kMs * 1000 + 999);
  Uuid7Generator gen(&clock);
  for (int i = 0; i < 1000; ++i) {
    const std::string id = gen.Next();
    ASSERT_EQ(id.size(), 36u);
    ASSERT_TRUE(IsUuid7(id)) << id;
  }
}

TEST(Uuid7, TimestampIsClockMilliseconds) {
  ManualClock clock(kMs * 1000 + 999);
  Uuid7Generator gen(&clock);
  EXPECT_EQ(TimestampMs(gen.Next()), static_cast<uint64_t>(kMs));
  clock.Advance(1000);
  EXPECT_EQ(TimestampMs(gen.Next()), static_cast<uint64_t>(kMs + 1));
}

TEST(Uuid7, HundredThousandStrictlyIncreasing) {
  Uuid7Generator gen;
  std::string prev = gen.Next();
  for (int i = 0; i < 100'000; ++i) {
    std::string id = gen.Next();
    ASSERT_LT(prev, id) << "at " << i;
    prev = std::move(id);
  }
}

TEST(Uuid7, SameMillisecondCountsUpThenBorrowsNextMillisecond) {
  ManualClock clock(kMs * 1000);
  Uuid7Generator gen(&clock);
  std::string prev = gen.Next();
  ASSERT_EQ(TimestampMs(prev), static_cast<uint64_t>(kMs));
  ASSERT_LT(Counter(prev), 0x800u);  // seeded with the top bit clear
  // 10,000 ids without the clock moving: more than one 12-bit counter can hold.
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = gen.Next();
    ASSERT_LT(prev, id) << "at " << i;
    if (TimestampMs(id) == TimestampMs(prev)) {
      ASSERT_EQ(Counter(id), Counter(prev) + 1) << "at " << i;
    } else {
      ASSERT_EQ(TimestampMs(id), TimestampMs(prev) + 1);
      ASSERT_EQ(Counter(prev), 0xfffu);
    }
    prev = id;
  }
  EXPECT_GT(TimestampMs(prev), static_cast<uint64_t>(kMs + 1));
  // When the clock catches up past the borrowed milliseconds, it is used again.
  clock.Set((kMs + 100) * 1000);
  EXPECT_EQ(TimestampMs(gen.Next()), static_cast<uint64_t>(kMs + 100));
}

TEST(Uuid7, ClockSteppingBackwardsStillIncreases) {
  ManualClock clock(kMs * 1000);
  Uuid7Generator gen(&clock);
  const std::string before = gen.Next();
  clock.Set((kMs - 10'000) * 1000);  // NTP stepped the clock back ten seconds
  std::string prev = before;
  for (int i = 0; i < 100; ++i) {
    const std::string id = gen.Next();
    ASSERT_LT(prev, id);
    ASSERT_EQ(TimestampMs(id), static_cast<uint64_t>(kMs));
    prev = id;
  }
}

TEST(Uuid7, ClockBeforeEpochDoesNotCrash) {
  ManualClock clock(-5);
  Uuid7Generator gen(&clock);
  const std::string a = gen.Next();
  const std::string b = gen.Next();
  EXPECT_EQ(TimestampMs(a), 0u);
  EXPECT_LT(a, b);
}

TEST(Uuid7, ThreadsGetUniqueIncreasingIds) {
  Uuid7Generator gen;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25'000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&gen, &out = ids[static_cast<size_t>(t)]] {
      out.reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) out.push_back(gen.Next());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& per_thread : ids) {
    for (size_t i = 1; i < per_thread.size(); ++i) ASSERT_LT(per_thread[i - 1], per_thread[i]);
    all.insert(per_thread.begin(), per_thread.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(Uuid7, DefaultGeneratorIsShared) {
  EXPECT_EQ(&DefaultUuid7(), &DefaultUuid7());
  const std::string first = DefaultUuid7().Next();
  const std::string second = DefaultUuid7().Next();
  EXPECT_LT(first, second);
}

}  // namespace
}  // namespace sluice::event
