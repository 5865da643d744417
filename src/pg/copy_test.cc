// The binary COPY byte format: what the encoder writes and the decoder reads, without a server
// (pg_test.cc runs both against a real one).
#include "pg/copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace sluice::pg {
namespace {

using namespace std::string_literals;

const std::string kHeader = "PGCOPY\n\xff\r\n\0"s + "\0\0\0\0"s + "\0\0\0\0"s;

TEST(CopyEncoderTest, WritesHeaderRowsAndTrailerBigEndian) {
  CopyEncoder enc;
  EXPECT_EQ(std::string(enc.data()), kHeader);
  enc.BeginRow(6);
  enc.AddNull();
  enc.AddInt64(0x0102030405060708);
  enc.AddBool(true);
  enc.AddText("hé");
  enc.AddJsonb("{}");
  enc.AddTimestamp(kPostgresEpochUnixUs + 1);  // 2000-01-01T00:00:00.000001Z
  enc.AddTrailer();
  const std::string want = kHeader + "\0\x06"s +               // 6 fields
                           "\xff\xff\xff\xff"s +               // NULL
                           "\0\0\0\x08\x01\x02\x03\x04\x05\x06\x07\x08"s +
                           "\0\0\0\x01\x01"s +                 // true
                           "\0\0\0\x03h\xc3\xa9"s +            // 3 bytes of UTF-8
                           "\0\0\0\x03\x01{}"s +               // jsonb version 1
                           "\0\0\0\x08\0\0\0\0\0\0\0\x01"s +   // 1 us after 2000-01-01
                           "\xff\xff"s;                        // trailer
  EXPECT_EQ(std::string(enc.data()), want);
  enc.Clear();
  EXPECT_EQ(enc.size(), 0u);
}

TEST(CopyEncoderTest, TimestampsBeforeThePostgresEpochAreNegative) {
  CopyEncoder enc;
  enc.Clear();
  enc.AddTimestamp(0);  // 1970-01-01: -946684800 s from 2000-01-01
  auto v = DecodeTimestamp(enc.data().substr(4));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0);
  EXPECT_EQ(*DecodeInt64(enc.data().substr(4)), -kPostgresEpochUnixUs);
}

// Encodes rows of (int8, text-or-NULL, timestamptz, jsonb).
std::string Stream(int rows) {
  CopyEncoder enc;
  for (int i = 0; i < rows; ++i) {
    enc.BeginRow(4);
    enc.AddInt64(i * 1000);
    if (i % 3 == 1) {
      enc.AddNull();
    } else {
      enc.AddText("row " + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'x'));
    }
    enc.AddTimestamp(1714564800LL * 1'000'000 + i);
    enc.AddJsonb(R"({"i":)" + std::to_string(i) + "}");
  }
  enc.AddTrailer();
  return std::string(enc.data());
}

void ExpectRow(const CopyRow& row, int i) {
  ASSERT_EQ(row.fields.size(), 4u);
  EXPECT_EQ(*DecodeInt64(*row.fields[0]), i * 1000);
  if (i % 3 == 1) {
    EXPECT_FALSE(row.fields[1].has_value());
  } else {
    EXPECT_EQ(*row.fields[1], "row " + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'x'));
  }
  EXPECT_EQ(*DecodeTimestamp(*row.fields[2]), 1714564800LL * 1'000'000 + i);
  EXPECT_EQ(*DecodeJsonb(*row.fields[3]), R"({"i":)" + std::to_string(i) + "}");
}

TEST(CopyDecoderTest, DecodesAWholeStream) {
  const std::string s = Stream(100);
  CopyDecoder dec;
  dec.Feed(s);
  CopyRow row;
  for (int i = 0; i < 100; ++i) {
    auto got = dec.Next(&row);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(*got) << "row " << i;
    ExpectRow(row, i);
  }
  EXPECT_FALSE(*dec.Next(&row));
  EXPECT_TRUE(dec.finished());
  EXPECT_EQ(dec.buffered(), 0u);
}

// Every chunk size, including 1 byte: rows cut anywhere (in the header, in a length, in a
// value) come out whole, and each chunk may be freed once the next one is fed.
TEST(CopyDecoderTest, RowsSplitAcrossChunksAtAnyByte) {
  const std::string s = Stream(20);
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{19}, size_t{64}}) {
    CopyDecoder dec;
    CopyRow row;
    int next = 0;
    std::vector<std::string> chunks;
    for (size_t at = 0; at < s.size(); at += chunk) chunks.push_back(s.substr(at, chunk));
    for (size_t k = 0; k < chunks.size(); ++k) {
      dec.Feed(chunks[k]);
      // The caller frees the previous chunk once the next one is fed.
      if (k > 0) std::fill(chunks[k - 1].begin(), chunks[k - 1].end(), '?');
      while (true) {
        auto got = dec.Next(&row);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        if (!*got) break;
        ExpectRow(row, next++);
      }
    }
    EXPECT_EQ(next, 20) << "chunk " << chunk;
    EXPECT_TRUE(dec.finished()) << "chunk " << chunk;
  }
}

TEST(CopyDecoderTest, RefusesWhatIsNotBinaryCopy) {
  CopyDecoder dec;
  dec.Feed("PGCOPY\nNOT A HEADER AT ALL....");
  CopyRow row;
  EXPECT_EQ(dec.Next(&row).status().code(), StatusCode::kCorruption);

  std::string oids = kHeader;
  oids[11 + 1] = 1;  // bit 16 of the flags: OIDs included
  CopyDecoder dec2;
  dec2.Feed(oids);
  EXPECT_EQ(dec2.Next(&row).status().code(), StatusCode::kCorruption);

  CopyDecoder dec3;
  std::string bad_len = kHeader + "\0\x01"s + "\xff\xff\xff\xfe"s;  // length -2
  dec3.Feed(bad_len);
  EXPECT_EQ(dec3.Next(&row).status().code(), StatusCode::kCorruption);

  EXPECT_EQ(DecodeInt64("abc").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeTimestamp("").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeJsonb("\x02{}").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeBool("xx").status().code(), StatusCode::kCorruption);
}

TEST(CopyDecoderTest, HeaderExtensionIsSkipped) {
  std::string s = "PGCOPY\n\xff\r\n\0"s + "\0\0\0\0"s + "\0\0\0\x03"s + "abc"s + "\0\x01"s +
                  "\0\0\0\x02hi"s + "\xff\xff"s;
  CopyDecoder dec;
  dec.Feed(s);
  CopyRow row;
  ASSERT_TRUE(*dec.Next(&row));
  EXPECT_EQ(*row.fields[0], "hi");
  EXPECT_FALSE(*dec.Next(&row));
  EXPECT_TRUE(dec.finished());
}

}  // namespace
}  // namespace sluice::pg
