// For tests (header-only): the shared s3rver of scripts/test.sh, and s3rvers of a test's own.
//
// S3 tests run when SLUICE_TEST_S3_ENDPOINT and SLUICE_TEST_S3_BUCKET are set (scripts/test.sh
// starts s3rver and sets them, with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_REGION, and
// exports SLUICE_REQUIRE_S3=1 so that they fail rather than skip without it):
// SLUICE_S3_OR_SKIP() says so in a test body or SetUp.
//
// S3rverProcess starts one of the test's own (scripts/s3rver.sh) on a free port with its files
// in a directory the test owns, so the test may stop, kill -9 and restart it on the same port
// and data. The including target defines SLUICE_SOURCE_DIR (the checkout holding
// scripts/s3rver.sh); the CMake target sluice_s3rver_test_server does.
//
// Not thread-safe.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

namespace sluice::objstore::testing {

inline std::string EnvOr(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

#define SLUICE_S3_OR_SKIP()                                                                    \
  if (::sluice::objstore::testing::EnvOr("SLUICE_TEST_S3_ENDPOINT").empty() ||                 \
      ::sluice::objstore::testing::EnvOr("SLUICE_TEST_S3_BUCKET").empty()) {                   \
    if (::sluice::objstore::testing::EnvOr("SLUICE_REQUIRE_S3") == "1") {                      \
      FAIL() << "SLUICE_TEST_S3_ENDPOINT/SLUICE_TEST_S3_BUCKET are not set, but "              \
                "SLUICE_REQUIRE_S3=1: S3 tests must run";                                      \
    }                                                                                          \
    GTEST_SKIP() << "SLUICE_TEST_S3_ENDPOINT is not set: start s3rver with scripts/s3rver.sh " \
                    "and set it (and SLUICE_TEST_S3_BUCKET) to run S3 tests";                  \
  }

// Runs `command` with /bin/sh; returns its exit code, stdout and stderr in *out.
inline int RunShell(const std::string& command, std::string* out) {
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int rc = ::pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Runs `command` in bash after sourcing scripts/s3rver.sh.
inline int S3rverSh(const std::string& command, std::string* out) {
  return RunShell("bash -c 'source " SLUICE_SOURCE_DIR "/scripts/s3rver.sh && " + command + "'",
                  out);
}

// A prefix no other test (or run) uses.
inline std::string UniquePrefix(const std::string& name) {
  std::random_device rd;
  return "test-" + name + "-" + std::to_string(rd()) + std::to_string(rd());
}

// An s3rver of the test's own, with the bucket `bucket`, stopped on destruction.
class S3rverProcess {
 public:
  explicit S3rverProcess(std::string dir, std::string bucket = "private")
      : dir_(std::move(dir)), bucket_(std::move(bucket)) {
    std::string out;
    if (S3rverSh("s3rver_free_port", &out) != 0) {
      ADD_FAILURE() << "s3rver_free_port: " << out;
      return;
    }
    port_ = std::atoi(out.c_str());
    Start();
  }
  ~S3rverProcess() { Stop(); }
  S3rverProcess(const S3rverProcess&) = delete;
  S3rverProcess& operator=(const S3rverProcess&) = delete;

  bool Start() {
    std::string out;
    int rc = S3rverSh("s3rver_start " + dir_ + " " + std::to_string(port_) + " " + bucket_, &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0;
  }
  bool Stop() {
    std::string out;
    int rc = S3rverSh("s3rver_stop " + dir_, &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0;
  }
  // SIGKILL, from here: no shell in between, so it lands mid-transfer.
  void Kill9() {
    std::ifstream f(dir_ + "/s3rver.pid");
    long pid = 0;
    f >> pid;
    if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& bucket() const { return bucket_; }

 private:
  std::string dir_;
  std::string bucket_;
  int port_ = 0;
};

}  // namespace sluice::objstore::testing
