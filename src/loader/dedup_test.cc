#include "loader/dedup.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::loader {
namespace {

TEST(Dedup, RemembersWithinWindowAndForgetsAfter) {
  DedupSet d(/*window_us=*/1'000'000, /*max_ids=*/100);
  d.Insert(FingerprintOf("a"), 10'000'000);
  EXPECT_TRUE(d.Contains(FingerprintOf("a")));
  EXPECT_FALSE(d.Contains(FingerprintOf("b")));
  d.Insert(FingerprintOf("b"), 10'900'000);  // within 1 s of "a"
  EXPECT_TRUE(d.Contains(FingerprintOf("a")));
  d.Insert(FingerprintOf("c"), 11'000'001);  // "a" is now more than 1 s behind
  EXPECT_FALSE(d.Contains(FingerprintOf("a")));
  EXPECT_TRUE(d.Contains(FingerprintOf("b")));
  EXPECT_EQ(d.size(), 2u);
}

TEST(Dedup, BoundedInCount) {
  DedupSet d(/*window_us=*/1'000'000'000, /*max_ids=*/1000);
  for (int i = 0; i < 5000; ++i) d.Insert(FingerprintOf("id-" + std::to_string(i)), 1);
  EXPECT_EQ(d.size(), 1000u);
  EXPECT_FALSE(d.Contains(FingerprintOf("id-0")));       // oldest forgotten
  EXPECT_TRUE(d.Contains(FingerprintOf("id-4999")));     // newest kept
  EXPECT_TRUE(d.Contains(FingerprintOf("id-4000")));
  EXPECT_FALSE(d.Contains(FingerprintOf("id-3999")));
}

TEST(Dedup, FingerprintsDiffer) {
  EXPECT_FALSE(FingerprintOf("a") == FingerprintOf("b"));
  EXPECT_TRUE(FingerprintOf("same") == FingerprintOf("same"));
}

}  // namespace
}  // namespace sluice::loader
