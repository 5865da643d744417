// Helpers shared by the buffer tests: a temporary directory and a blocking Append.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "buffer/buffer.h"

namespace sluice::buffer::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/sluice-buffer-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Appends and blocks until the callback has run; returns what it reported.
inline Status AppendAndWait(Buffer& buffer, std::vector<std::string> records) {
  std::promise<Status> promise;
  std::future<Status> result = promise.get_future();
  buffer.Append(std::move(records), [&promise](Status s) { promise.set_value(std::move(s)); });
  return result.get();
}

}  // namespace sluice::buffer::testing
