// TempDir: a fresh directory under $TMPDIR (or /tmp) for tests, removed with its contents on
// destruction unless SLUICE_KEEP_TEST_DIRS is set (to look at what a failed test left).
// Header-only; for tests.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sluice::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sluice-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    if (std::getenv("SLUICE_KEEP_TEST_DIRS") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::testing
