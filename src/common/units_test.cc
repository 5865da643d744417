#include "common/units.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Units, Bytes) {
  EXPECT_EQ(*ParseBytes("1048576"), 1048576u);
  EXPECT_EQ(*ParseBytes("4MiB"), 4u << 20);
  EXPECT_EQ(*ParseBytes("32KiB"), 32u << 10);
  EXPECT_EQ(*ParseBytes("8GiB"), 8ull << 30);
  EXPECT_EQ(*ParseBytes("2gb"), 2'000'000'000u);
  EXPECT_EQ(*ParseBytes("1.5 KiB"), 1536u);
  EXPECT_FALSE(ParseBytes("").ok());
  EXPECT_FALSE(ParseBytes("MiB").ok());
  EXPECT_FALSE(ParseBytes("-1").ok());
  auto bad = ParseBytes("4 parsecs");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown size unit"), std::string::npos);
}

TEST(Units, Durations) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("30"), milliseconds(30'000));
  EXPECT_EQ(*ParseDuration("10m"), milliseconds(600'000));
  EXPECT_EQ(*ParseDuration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_FALSE(ParseDuration("10 fortnights").ok());
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_EQ(FormatDuration(milliseconds(600'000)), "10m");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(7'200'000)), "2h");
}

}  // namespace
}  // namespace sluice
