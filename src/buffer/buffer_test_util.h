// Helpers shared by the buffer tests: a temporary directory and a blocking Append.
#pragma once

#include "common/temp_dir.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "buffer/buffer.h"

namespace sluice::buffer::testing {

using TempDir = ::sluice::testing::TempDir;

// Appends and blocks until the callback has run; returns what it reported.
inline Status AppendAndWait(Buffer& buffer, std::vector<std::string> records) {
  std::promise<Status> promise;
  std::future<Status> result = promise.get_future();
  buffer.Append(std::move(records), [&promise](Status s) { promise.set_value(std::move(s)); });
  return result.get();
}

// SLUICE_TEST_REDIS_URL (a redis-server for tests, e.g. from scripts/test.sh), or "" when unset.
inline std::string RedisTestUrl() {
  const char* url = std::getenv("SLUICE_TEST_REDIS_URL");
  return url ? url : "";
}

// SLUICE_REQUIRE_REDIS=1: tests that need Redis fail, rather than skip, without it.
inline bool RedisRequired() {
  const char* v = std::getenv("SLUICE_REQUIRE_REDIS");
  return v != nullptr && std::string(v) == "1";
}

constexpr const char* kRedisSkipMessage =
    "SLUICE_TEST_REDIS_URL is unset: set it to redis://127.0.0.1:PORT of a redis-server "
    "(scripts/redis.sh) to run the Redis tests";

// A stream name no other test (or test process) uses.
inline std::string UniqueStreamName() {
  static std::atomic<int> counter{0};
  return "sluice:test:" + std::to_string(::getpid()) + ":" + std::to_string(counter.fetch_add(1));
}

}  // namespace sluice::buffer::testing
