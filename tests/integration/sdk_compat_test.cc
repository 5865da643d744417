// Segment's and RudderStack's own Node SDKs (tests/sdk, installed by `npm ci` in
// scripts/test.sh) pointed at the real binary: every event type of both SDKs must be
// acknowledged and land in the log, normalised, with the write key's name as source.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "log_reader.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

TEST(SdkCompat, SegmentAndRudderStackNodeSdksDeliverEveryEventType) {
  std::string sdk_dir = SourceDir() + "/tests/sdk";
  ASSERT_TRUE(std::filesystem::exists(sdk_dir + "/node_modules/@segment/analytics-node"))
      << "run `npm ci --prefix tests/sdk` (scripts/test.sh does)";
  TempDir dir;
  std::string data = dir.path() + "/data";
  auto proc = SluiceProcess::StartBufferOnly(data, {"--write-key", "sdk:sdk-secret-key-1"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();

  std::string out;
  int rc = SluiceProcess::RunProgram(
      {"node", sdk_dir + "/send.mjs", "http://" + (*proc)->address(), "sdk-secret-key-1"}, &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("sdk-compat: all delivered"), std::string::npos) << out;
  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();

  LogContents log = ReadLog(data);
  EXPECT_TRUE(log.rejections.empty()) << log.rejections[0].error;
  const std::set<std::string> all_types = {"track", "identify", "page", "screen", "group", "alias"};
  for (const std::string prefix : {"seg", "rud"}) {
    std::map<std::string, const event::Event*> by_type;
    for (const auto& e : log.events) {
      if (e.user_id.starts_with(prefix + "-") || e.anonymous_id.starts_with(prefix + "-")) {
        EXPECT_EQ(by_type.count(e.type), 0u) << prefix << " " << e.type << " stored twice";
        by_type[e.type] = &e;
      }
    }
    std::set<std::string> types;
    for (const auto& [t, e] : by_type) types.insert(t);
    ASSERT_EQ(types, all_types) << prefix;
    for (const auto& [t, e] : by_type) {
      EXPECT_EQ(e->source, "sdk");
      EXPECT_FALSE(e->event_id.empty());
      EXPECT_TRUE(e->sent_at_us.has_value()) << prefix << " " << t << ": SDKs send sentAt";
    }
    const event::Event& track = *by_type["track"];
    EXPECT_EQ(track.event, "Order Completed");
    EXPECT_NE(track.properties.find("\"revenue\":42.5"), std::string::npos) << track.properties;
    EXPECT_NE(track.context.find("\"ip\":\"203.0.113.9\""), std::string::npos) << track.context;
    EXPECT_NE(by_type["identify"]->traits.find("\"plan\":\"pro\""), std::string::npos);
    EXPECT_EQ(by_type["page"]->event, "Home");
    EXPECT_EQ(by_type["screen"]->event, "Settings");
    EXPECT_NE(by_type["group"]->properties.find("\"groupId\":\"" + prefix + "-g1\""),
              std::string::npos) << by_type["group"]->properties;
    EXPECT_NE(by_type["alias"]->properties.find("\"previousId\":\"" + prefix + "-anon\""),
              std::string::npos) << by_type["alias"]->properties;
  }
}

}  // namespace
}  // namespace sluice::testing
