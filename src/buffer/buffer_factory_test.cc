#include "buffer/buffer_factory.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "buffer/buffer_test_util.h"

namespace sluice::buffer {
namespace {

using namespace std::chrono_literals;

TEST(MakeBuffer, DiskOpensALogInTheDirectory) {
  testing::TempDir dir;
  BufferConfig config;
  config.kind = "disk";
  config.dir = dir.path() + "/buf";
  config.max_bytes = 1000;
  auto buffer = MakeBuffer(config);
  ASSERT_TRUE(buffer.ok()) << buffer.status().ToString();
  ASSERT_TRUE(testing::AppendAndWait(**buffer, {"x"}).ok());
  EXPECT_EQ((*buffer)->Stats().capacity_bytes, 1000u);
  EXPECT_TRUE(std::filesystem::exists(config.dir + "/00000000000000000000.log"));
}

TEST(MakeBuffer, MemoryMakesAnInMemoryBuffer) {
  BufferConfig config;
  config.kind = "memory";
  config.max_bytes = 100;
  auto buffer = MakeBuffer(config);
  ASSERT_TRUE(buffer.ok());
  ASSERT_TRUE(testing::AppendAndWait(**buffer, {"x"}).ok());
  auto records = (*buffer)->Read(0, 10, 1000, 0ms);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].payload, "x");
  EXPECT_EQ((*buffer)->Stats().capacity_bytes, 100u);
}

TEST(MakeBuffer, UnknownKindsAreInvalidArguments) {
  BufferConfig config;
  config.kind = "tape";
  auto unknown = MakeBuffer(config);
  ASSERT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "unknown buffer kind \"tape\": expected \"disk\", \"memory\" or redis://HOST:PORT");

  // Nothing listens on port 1: the error names the server, not the password.
  config.kind = "redis://:secret@127.0.0.1:1/0";
  auto redis = MakeBuffer(config);
  ASSERT_EQ(redis.status().code(), StatusCode::kUnavailable) << redis.status().ToString();
  EXPECT_NE(redis.status().message().find("127.0.0.1:1"), std::string::npos);
  EXPECT_EQ(redis.status().message().find("secret"), std::string::npos);
  config.kind = "redis://:secret@127.0.0.1:99999";
  auto bad = MakeBuffer(config);
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "bad redis port in redis://:***@127.0.0.1:99999");

  config.kind = "disk";
  config.dir = "";
  EXPECT_EQ(MakeBuffer(config).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::buffer
