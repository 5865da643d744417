#include "http/compression.h"

#include <gtest/gtest.h>
#include <zstd.h>

namespace sluice::http {
namespace {

TEST(Compression, GzipRoundTripAndConcatenatedMembers) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "event " + std::to_string(i) + "\n";
  std::string out;
  ASSERT_TRUE(DecodeBody("gzip", GzipCompress(text), 1 << 20, &out).ok());
  EXPECT_EQ(out, text);
  ASSERT_TRUE(DecodeBody("gzip", GzipCompress("ab") + GzipCompress("cd"), 100, &out).ok());
  EXPECT_EQ(out, "abcd");
  ASSERT_TRUE(DecodeBody("", "plain", 100, &out).ok());
  EXPECT_EQ(out, "plain");
}

TEST(Compression, ZstdRoundTrip) {
  std::string text(100'000, 'z');
  std::string comp(ZSTD_compressBound(text.size()), '\0');
  comp.resize(ZSTD_compress(comp.data(), comp.size(), text.data(), text.size(), 1));
  std::string out;
  ASSERT_TRUE(DecodeBody("zstd", comp, 200'000, &out).ok());
  EXPECT_EQ(out, text);
  auto capped = DecodeBody("zstd", comp, 99'999, &out);
  EXPECT_EQ(capped.code(), StatusCode::kResourceExhausted);
}

TEST(Compression, CapCorruptTruncatedAndUnsupported) {
  std::string out;
  std::string big = GzipCompress(std::string(100'000, 'a'));
  EXPECT_TRUE(DecodeBody("gzip", big, 100'000, &out).ok());
  EXPECT_EQ(DecodeBody("gzip", big, 99'999, &out).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeBody("gzip", "not gzip at all", 1000, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBody("gzip", big.substr(0, big.size() / 2), 1 << 20, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBody("zstd", "garbage!", 1000, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBody("br", "x", 1000, &out).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sluice::http
