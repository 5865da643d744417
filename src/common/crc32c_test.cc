#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::crc32c {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros), 0x8A9136AAu);
  std::string ones(32, '\xFF');
  EXPECT_EQ(Value(ones), 0x62A8AB43u);
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
}

TEST(Crc32c, HardwareMatchesPortableAndExtendIsAssociative) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 1000u}) {
    EXPECT_EQ(Extend(0, data.data(), len), ExtendPortable(0, data.data(), len)) << len;
  }
  uint32_t split = Extend(Extend(0, data.data(), 333), data.data() + 333, 667);
  EXPECT_EQ(split, Value(data));
}

}  // namespace
}  // namespace sluice::crc32c
