#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "event/parser.h"

namespace sluice::event {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t k20240501Noon = 1'714'564'800 * kSecond;  // 2024-05-01T12:00:00Z

int64_t MustParse(std::string_view text) {
  Result<int64_t> r = ParseTimestamp(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : -1;
}

std::string ErrorOf(std::string_view text) {
  Result<int64_t> r = ParseTimestamp(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << (r.ok() ? *r : 0);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(ParseTimestamp, UtcWithoutFraction) {
  EXPECT_EQ(MustParse("2024-05-01T12:00:00Z"), k20240501Noon);
  EXPECT_EQ(MustParse("1970-01-01T00:00:00Z"), 0);
}

TEST(ParseTimestamp, FractionalSecondsTruncatedToMicros) {
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.1Z"), k20240501Noon + 100'000);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.123Z"), k20240501Noon + 123'000);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.123456Z"), k20240501Noon + 123'456);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.123456789Z"), k20240501Noon + 123'456);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.999999999Z"), k20240501Noon + 999'999);
}

TEST(ParseTimestamp, Offsets) {
  EXPECT_EQ(MustParse("2024-05-01T14:00:00+02:00"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01T14:00:00+0200"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01T06:30:00-05:30"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01T06:30:00-0530"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00-00:00"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-02T01:00:00.5+13:00"), k20240501Noon + 500'000);
}

TEST(ParseTimestamp, SeparatorsAndCase) {
  EXPECT_EQ(MustParse("2024-05-01 12:00:00Z"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01t12:00:00z"), k20240501Noon);
}

TEST(ParseTimestamp, MissingOffsetIsUtc) {
  EXPECT_EQ(MustParse("2024-05-01T12:00:00"), k20240501Noon);
  EXPECT_EQ(MustParse("2024-05-01T12:00:00.250"), k20240501Noon + 250'000);
}

TEST(ParseTimestamp, MinutesWithoutSeconds) {
  EXPECT_EQ(MustParse("2024-05-01T12:00Z"), k20240501Noon);
}

TEST(ParseTimestamp, DateOnlyIsMidnightUtc) {
  EXPECT_EQ(MustParse("2024-05-01"), k20240501Noon - 12 * 3600 * kSecond);
}

TEST(ParseTimestamp, LeapYears) {
  EXPECT_EQ(MustParse("2024-02-29T00:00:00Z"), 1'709'164'800 * kSecond);
  EXPECT_EQ(MustParse("2000-02-29T00:00:00Z"), 951'782'400 * kSecond);
  EXPECT_NE(ErrorOf("2023-02-29T00:00:00Z").find("day 29 is out of range for February 2023"),
            std::string::npos);
  EXPECT_NE(ErrorOf("2100-02-29").find("day 29 is out of range for February 2100"),
            std::string::npos);
  EXPECT_NE(ErrorOf("2024-04-31").find("day 31 is out of range for April 2024"), std::string::npos);
}

TEST(ParseTimestamp, LeapSecondRollsIntoNextMinute) {
  EXPECT_EQ(MustParse("2024-05-01T11:59:60Z"), k20240501Noon);
}

TEST(ParseTimestamp, RangeErrorsNameTheField) {
  EXPECT_NE(ErrorOf("2024-05-01T24:00:00Z").find("hour 24 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("2024-05-01T12:60:00Z").find("minute 60 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("2024-05-01T12:00:61Z").find("second 61 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("2024-13-01").find("month 13 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("2024-00-01").find("month 0 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("2024-05-00").find("day 0 is out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("1969-12-31T23:59:59Z").find("before 1970"), std::string::npos);
}

TEST(ParseTimestamp, BadOffsets) {
  for (const char* text :
       {"2024-05-01T12:00:00+2:00", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+02:60",
        "2024-05-01T12:00:00+02", "2024-05-01T12:00:00+02:0", "2024-05-01T12:00:00Z+01:00",
        "2024-05-01T12:00:00+02:00Z", "2024-05-01T12:00:00 Z", "2024-05-01T12:00:00UTC",
        "2024-05-01T12:00:00+", "2024-05-01+02:00"}) {
    SCOPED_TRACE(text);
    EXPECT_NE(ErrorOf(text).find("not an ISO-8601 time"), std::string::npos);
  }
}

TEST(ParseTimestamp, Garbage) {
  for (const char* text : {"",
                           "yesterday",
                           "2024",
                           "2024-05",
                           "2024-5-1",
                           "24-05-01",
                           "2024/05/01",
                           "2024-05-01T",
                           "2024-05-01T12",
                           "2024-05-01T12:",
                           "2024-05-01T12:00:",
                           "2024-05-01T1:00:00Z",
                           "2024-05-01T12:00:00.Z",
                           "2024-05-01T12:00:00.1234567890Z",
                           "2024-05-01T12:00.5Z",
                           " 2024-05-01",
                           "2024-05-01T12:00:00Z ",
                           "2024-05-01X12:00:00Z",
                           "10000-01-01",
                           "+2024-05-01",
                           "2024-05-01T12:00:00,5Z",
                           "1714564800",
                           "2024-05-01T12:00:00\xff"}) {
    SCOPED_TRACE(text);
    EXPECT_NE(ErrorOf(text).find("not an ISO-8601 time"), std::string::npos);
  }
}

TEST(ParseTimestamp, ErrorQuotesTheInput) {
  EXPECT_EQ(ErrorOf("yesterday"),
            "not an ISO-8601 time: \"yesterday\" (expected YYYY-MM-DD, or "
            "YYYY-MM-DDTHH:MM:SS[.fraction] with Z or an offset like +02:00)");
  // Long input is cut so the message stays short.
  const std::string message = ErrorOf(std::string(500, 'x'));
  EXPECT_LT(message.size(), 250u);
  EXPECT_NE(message.find("\"..."), std::string::npos);
}

TEST(ParseTimestamp, LastAcceptedInstant) {
  EXPECT_EQ(MustParse("9999-12-31T23:59:59.999999Z"), 253'402'300'799'999'999);
}

TEST(FormatTimestamp, KnownValues) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(k20240501Noon + 123'456), "2024-05-01T12:00:00.123456Z");
  EXPECT_EQ(FormatTimestamp(1'709'164'800 * kSecond), "2024-02-29T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(FormatTimestamp, ExtremesDoNotCrash) {
  EXPECT_EQ(FormatTimestamp(INT64_MAX), "294247-01-10T04:00:54.775807Z");
  EXPECT_EQ(FormatTimestamp(INT64_MIN), "-290308-12-21T19:59:05.224192Z");
}

TEST(Timestamp, RoundTrip) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> dist(0, 253'402'300'799'999'999);
  for (int i = 0; i < 100'000; ++i) {
    const int64_t t = dist(rng);
    const std::string text = FormatTimestamp(t);
    ASSERT_EQ(MustParse(text), t) << text;
  }
}

}  // namespace
}  // namespace sluice::event
