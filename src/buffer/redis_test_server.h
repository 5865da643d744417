// RedisTestServer: a redis-server of a test's own, for tests (header-only). It is started with
// scripts/redis.sh (appendonly yes, appendfsync everysec, maxmemory-policy noeviction) on a free
// port of 127.0.0.1, with its data, pidfile and log in a directory the test owns, so a test may
// fill it up, password it, stop it (SHUTDOWN, which fsyncs the AOF), kill -9 it, and restart it
// on the same directory and port (it reloads its AOF). The server is stopped when the object
// goes.
//
// The including target defines SLUICE_SOURCE_DIR (the checkout holding scripts/redis.sh); the
// CMake target sluice_redis_test_server does, and links hiredis.
//
// Redis tests run when SLUICE_TEST_REDIS_URL is set (scripts/test.sh sets it once redis-server
// is installed and exports SLUICE_REQUIRE_REDIS=1, so that they fail rather than skip without
// it): SLUICE_REDIS_OR_SKIP() says so in a test body or SetUp.
//
// Not thread-safe, except Command() and Integer(), which open a connection of their own per call.
#pragma once

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "buffer/buffer_test_util.h"

#ifndef SLUICE_SOURCE_DIR
#error "buffer/redis_test_server.h needs SLUICE_SOURCE_DIR: link sluice_redis_test_server"
#endif

namespace sluice::buffer::testing {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

class RedisTestServer {
 public:
  // Starts redis-server on a free port with its files in `dir` (created); `extra` are further
  // redis.conf lines ("maxmemory 50mb", "requirepass s3cret"). Check ok() (a failure to start
  // fails the test too, with redis.sh's message).
  explicit RedisTestServer(std::string dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {
    std::string port = Sh("redis_free_port");
    if (!ok_) return;
    port_ = std::atoi(port.c_str());
    if (port_ <= 0) {
      ok_ = false;
      ADD_FAILURE() << "redis_free_port printed '" << port << "'";
      return;
    }
    Restart();
  }
  ~RedisTestServer() {
    if (port_ > 0) Stop();
  }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  // False once any start/stop failed (the failure is reported to gtest).
  bool ok() const { return ok_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // redis://AUTH127.0.0.1:PORTDB: `auth` is "" or "user:password@" (":s3cret@"), `db` is ""
  // or "/N".
  std::string url(const std::string& auth = "", const std::string& db = "") const {
    return "redis://" + auth + "127.0.0.1:" + std::to_string(port_) + db;
  }

  // SHUTDOWN (SIGTERM: the AOF is fsynced) and wait until the process is gone; nothing when it
  // is not running.
  bool Stop() {
    Sh("redis_stop " + Quote(dir_));
    return ok_;
  }
  // SIGKILL: whatever the last second of writes did not fsync is lost. Waits until it is gone.
  bool Kill9() {
    pid_t pid = Pid();
    if (pid <= 0) return true;
    ::kill(pid, SIGKILL);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Alive(pid)) {
      if (std::chrono::steady_clock::now() > deadline) {
        ok_ = false;
        ADD_FAILURE() << "redis-server " << pid << " still alive 10 s after SIGKILL";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  // Starts the server again on the same directory, port and configuration (after Stop or
  // Kill9); it reloads its AOF before answering PING, which redis_start waits for.
  bool Restart() { return RestartWith(extra_); }
  // The same with `extra` redis.conf lines instead of the ones it was made with, this once (a
  // later Restart() uses those again): e.g. an old primary coming back as a replica.
  bool RestartWith(const std::vector<std::string>& extra) {
    std::string cmd = "redis_start " + Quote(dir_) + " " + std::to_string(port_);
    for (const std::string& line : extra) cmd += " " + Quote(line);
    Sh(cmd);
    return ok_;
  }
  // The server's pid from its pidfile (0 when there is none).
  pid_t Pid() const {
    std::ifstream f(dir_ + "/redis.pid");
    long pid = 0;
    f >> pid;
    return static_cast<pid_t>(pid);
  }

  // Runs one command on a fresh connection, after AUTH `password` and SELECT `db` when given;
  // nullptr when Redis does not answer. An error reply is returned as such (type
  // REDIS_REPLY_ERROR).
  RedisReply Command(const std::vector<std::string>& args, const std::string& password = "",
                     int db = 0) const {
    struct timeval tv = {2, 0};
    std::unique_ptr<redisContext, decltype(&redisFree)> c(
        redisConnectWithTimeout("127.0.0.1", port_, tv), &redisFree);
    if (!c || c->err) return nullptr;
    redisSetTimeout(c.get(), tv);
    if (!password.empty()) {
      RedisReply auth(static_cast<redisReply*>(redisCommand(c.get(), "AUTH %s", password.c_str())));
    }
    if (db != 0) {
      RedisReply select(static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", db)));
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    return RedisReply(static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(args.size()), argv.data(), lens.data())));
  }
  // An integer reply's value; -1 for anything else (no answer, an error).
  long long Integer(const std::vector<std::string>& args, const std::string& password = "",
                    int db = 0) const {
    RedisReply r = Command(args, password, db);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  }

 private:
  static std::string Quote(const std::string& s) {
    std::string out = "'";
    for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return out + "'";
  }
  // A zombie (killed, not yet reaped by whoever adopted the daemon) counts as gone.
  static bool Alive(pid_t pid) {
    if (::kill(pid, 0) != 0) return errno != ESRCH;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
  }
  // Runs `command` in bash after sourcing scripts/redis.sh; returns its first line of output
  // (stdout and stderr). A failure fails the test and clears ok().
  std::string Sh(const std::string& command) {
    const std::string script =
        "source " + Quote(SLUICE_SOURCE_DIR "/scripts/redis.sh") + " && " + command;
    const std::string shell = "bash -c " + Quote(script) + " 2>&1";
    std::string out;
    int rc = -1;
    if (FILE* pipe = ::popen(shell.c_str(), "r"); pipe != nullptr) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
      const int wstatus = ::pclose(pipe);
      rc = wstatus == -1 ? -1 : WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    }
    if (rc != 0) {
      ok_ = false;
      ADD_FAILURE() << command << " -> " << rc << ": " << out;
    }
    return out.substr(0, out.find_first_of("\r\n"));
  }

  std::string dir_;
  std::vector<std::string> extra_;
  int port_ = 0;
  bool ok_ = true;
};

}  // namespace sluice::buffer::testing

// In a test body or SetUp: skips the test when SLUICE_TEST_REDIS_URL is unset (redis-server is
// not known to be installed), or fails it when SLUICE_REQUIRE_REDIS=1 says Redis tests must run.
#define SLUICE_REDIS_OR_SKIP()                                               \
  if (::sluice::buffer::testing::RedisTestUrl().empty()) {                   \
    if (::sluice::buffer::testing::RedisRequired()) {                        \
      FAIL() << "SLUICE_REQUIRE_REDIS=1 but SLUICE_TEST_REDIS_URL is unset"; \
    }                                                                        \
    GTEST_SKIP() << ::sluice::buffer::testing::kRedisSkipMessage;            \
  }
