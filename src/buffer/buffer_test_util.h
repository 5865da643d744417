// Helpers shared by the buffer tests: a temporary directory and a blocking Append.
#pragma once

#include "common/temp_dir.h"

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

}  // namespace sluice::buffer::testing
