#include "common/json_writer.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(JsonWriter, NestedAndEscaped) {
  JsonWriter w;
  w.BeginObject().Key("a").Int(-1).Key("s").String("q\"\\\n\x01").Key("arr").BeginArray();
  w.Uint(1).Bool(true).Null().Double(1.5).BeginObject().Key("k").String("v").EndObject();
  w.EndArray().Key("raw").Raw("{\"x\":1}").EndObject();
  EXPECT_EQ(w.str(),
            "{\"a\":-1,\"s\":\"q\\\"\\\\\\n\\u0001\",\"arr\":[1,true,null,1.5,{\"k\":\"v\"}],"
            "\"raw\":{\"x\":1}}");
}

TEST(JsonWriter, Utf8KeptAndInvalidReplaced) {
  std::string out;
  AppendJsonString(&out, "caf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_EQ(out, "\"caf\xC3\xA9 \xE2\x82\xAC\"");
  out.clear();
  AppendJsonString(&out, "a\xFF" "b\xC3");
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace sluice
