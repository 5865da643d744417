#include "event/event.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace sluice::event {
namespace {

using namespace std::string_literals;

Event FullEvent() {
  Event e;
  e.event_id = "01890a5d-ac96-774b-bcce-b302099a8057";
  e.type = "track";
  e.event = "Order Completed";
  e.user_id = "user-42";
  e.anonymous_id = "anon-7";
  e.event_time_us = 1'714'564'795'000'000;
  e.sent_at_us = 1'714'561'200'000'000;
  e.received_at_us = 1'714'564'800'000'000;
  e.properties = R"({"total":19.99,"items":[{"sku":"a"}]})";
  e.traits = "";
  e.context = R"({"ip":"192.0.2.1"})";
  e.source = "web";
  return e;
}

Rejection FullRejection() {
  return Rejection{1'714'564'800'000'000, "web",
                   "event 3: \"properties\" must be a JSON object, got array",
                   R"({"type":"track","properties":[1]})"};
}

template <typename T>
T RoundTrip(const T& in) {
  const std::string bytes = EncodeRecord(in);
  Result<Record> r = DecodeRecord(bytes);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r));
  return std::holds_alternative<T>(*r) ? std::get<T>(*r) : T{};
}

TEST(EventRecord, RoundTripWithSentAt) {
  const Event e = FullEvent();
  EXPECT_EQ(RoundTrip(e), e);
}

TEST(EventRecord, RoundTripWithoutSentAt) {
  Event e = FullEvent();
  e.sent_at_us.reset();
  const Event back = RoundTrip(e);
  EXPECT_EQ(back, e);
  EXPECT_FALSE(back.sent_at_us.has_value());
}

TEST(EventRecord, SentAtZeroIsNotAbsent) {
  Event e = FullEvent();
  e.sent_at_us = 0;
  const Event back = RoundTrip(e);
  ASSERT_TRUE(back.sent_at_us.has_value());
  EXPECT_EQ(*back.sent_at_us, 0);
}

TEST(EventRecord, RoundTripEmptyFields) {
  const Event e;  // every string empty, every time zero
  EXPECT_EQ(RoundTrip(e), e);
  EXPECT_EQ(EncodeRecord(e).size(), 2u + 5 + 8 + 1 + 8 + 4);
}

TEST(EventRecord, RoundTripBinaryStringsAndExtremeTimes) {
  Event e = FullEvent();
  e.event = "\0\xff\x80\n\"\\"s;
  e.user_id = std::string(300, '\0');          // a two-byte varint length
  e.properties = std::string(70'000, '\xfe');  // a three-byte varint length
  e.event_time_us = INT64_MIN;
  e.sent_at_us = -1;
  e.received_at_us = INT64_MAX;
  EXPECT_EQ(RoundTrip(e), e);
}

TEST(RejectionRecord, RoundTrip) {
  const Rejection r = FullRejection();
  EXPECT_EQ(RoundTrip(r), r);
  const Rejection empty;
  EXPECT_EQ(RoundTrip(empty), empty);
}

TEST(RejectionRecord, EncodingIsPinned) {
  // A change here is a format change: bump the version byte and keep reading the old one.
  const Rejection r{0x0102030405060708, "s", "e", "{}"};
  EXPECT_EQ(EncodeRecord(r),
            "R\x01\x08\x07\x06\x05\x04\x03\x02\x01\x01s\x01"
            "e\x02{}"s);
}

TEST(EventRecord, EncodingIsPinned) {
  Event e;
  e.event_id = "i";
  e.type = "t";
  e.event_time_us = 1;
  e.sent_at_us = 2;
  e.received_at_us = 3;
  e.source = "s";
  EXPECT_EQ(EncodeRecord(e),
            "E\x01\x01i\x01t\x00\x00\x00"
            "\x01\x00\x00\x00\x00\x00\x00\x00"
            "\x01"
            "\x02\x00\x00\x00\x00\x00\x00\x00"
            "\x03\x00\x00\x00\x00\x00\x00\x00"
            "\x00\x00\x00\x01s"s);
}

void ExpectCorruption(std::string_view bytes) {
  Result<Record> r = DecodeRecord(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

TEST(EventRecord, EveryTruncationIsCorruption) {
  for (const std::string& full : {EncodeRecord(FullEvent()), EncodeRecord(FullRejection())}) {
    for (size_t n = 0; n < full.size(); ++n) {
      SCOPED_TRACE(n);
      ExpectCorruption(std::string_view(full).substr(0, n));
    }
  }
}

TEST(EventRecord, TrailingBytesAreCorruption) {
  ExpectCorruption(EncodeRecord(FullEvent()) + "x");
  ExpectCorruption(EncodeRecord(FullRejection()) + '\0');
}

TEST(EventRecord, BadHeaderIsCorruption) {
  std::string bytes = EncodeRecord(FullEvent());
  bytes[0] = 'X';
  ExpectCorruption(bytes);
  bytes[0] = 'E';
  bytes[1] = 2;  // a version this build does not know
  ExpectCorruption(bytes);
}

TEST(EventRecord, BadSentAtFlagIsCorruption) {
  Event e;
  std::string bytes = EncodeRecord(e);
  const size_t flag = 2 + 5 + 8;  // header, five empty strings, event_time
  ASSERT_EQ(bytes[flag], '\0');
  bytes[flag] = 2;
  ExpectCorruption(bytes);
}

TEST(EventRecord, HugeOrOverlongLengthsAreCorruption) {
  // A length far beyond the input.
  ExpectCorruption("R\x01" + std::string(8, '\0') + "\xff\xff\xff\xff\x0f"s);
  // A varint of eleven bytes, and one whose tenth byte overflows 64 bits.
  ExpectCorruption("R\x01" + std::string(8, '\0') + std::string(10, '\x80') + "\x01"s);
  ExpectCorruption("R\x01" + std::string(8, '\0') + std::string(9, '\xff') + "\x02"s);
}

TEST(EventRecord, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  const std::string valid = EncodeRecord(FullEvent());
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = valid;
    // Flip a few bytes of a valid record, or make up bytes from scratch.
    if (i % 2 == 0) {
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else {
      bytes.assign(rng() % 64, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      if (!bytes.empty()) bytes[0] = (i % 4 == 1) ? 'E' : 'R';
      if (bytes.size() > 1) bytes[1] = 1;
    }
    Result<Record> r = DecodeRecord(bytes);
    if (r.ok()) {
      // Anything that decodes re-encodes to a record that decodes to the same value.
      const std::string again = std::visit([](const auto& rec) { return EncodeRecord(rec); }, *r);
      Result<Record> r2 = DecodeRecord(again);
      ASSERT_TRUE(r2.ok());
      ASSERT_EQ(*r2, *r);
    } else {
      ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
    }
  }
}

}  // namespace
}  // namespace sluice::event
