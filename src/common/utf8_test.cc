#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

using namespace std::string_literals;

TEST(Utf8Test, ValidatesWhatStoresAccept) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(IsValidUtf8("a\0b"s));                       // NUL is valid UTF-8
  EXPECT_FALSE(IsValidUtf8("caf\xc3"));                    // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                   // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));               // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));           // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("0123456789abcdef\xff"));       // after the ASCII fast path
}

TEST(Utf8Test, RepairReplacesEachBadByte) {
  std::string out;
  RepairUtf8("caf\xc3\xa9-\xc3", &out);
  EXPECT_EQ(out, "caf\xc3\xa9-\xef\xbf\xbd");
  RepairUtf8("\xff\xfe{\0x"s, &out);
  EXPECT_EQ(out, "\xef\xbf\xbd\xef\xbf\xbd{\0x"s);  // NUL kept by default
  RepairUtf8("\xff\xfe{\0x"s, &out, /*replace_nul=*/true);
  EXPECT_EQ(out, "\xef\xbf\xbd\xef\xbf\xbd{\xef\xbf\xbdx");
  RepairUtf8("ok", &out, true);
  EXPECT_EQ(out, "ok");
}

}  // namespace
}  // namespace sluice
