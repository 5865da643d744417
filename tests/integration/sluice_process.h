// SluiceProcess: starts the real `sluice` binary for integration tests, finds the address it
// bound (it listens on port 0 and writes DATA_DIR/serve.addr), and stops or kills it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/temp_dir.h"

namespace sluice::testing {


class SluiceProcess {
 public:
  // Runs `sluice serve --listen 127.0.0.1:0 --data-dir DATA_DIR ARGS…` and waits (up to 20 s)
  // until it serves /healthz. stdout/stderr go to DATA_DIR/../<name>.log.
  static Result<std::unique_ptr<SluiceProcess>> Start(const std::string& data_dir,
                                                      std::vector<std::string> args = {});
  // The same with `--loader=false`: events stay in the disk buffer, for tests that read the
  // buffer itself (log_reader.h) after the server stops.
  static Result<std::unique_ptr<SluiceProcess>> StartBufferOnly(const std::string& data_dir,
                                                                std::vector<std::string> args = {}) {
    args.push_back("--loader=false");
    return Start(data_dir, std::move(args));
  }
  // Runs `sluice ARGS…` to completion; returns exit code and combined output.
  static int RunToCompletion(std::vector<std::string> args, std::string* output);
  // Runs any program (found on PATH) to completion; returns exit code and combined output.
  static int RunProgram(std::vector<std::string> argv, std::string* output);

  ~SluiceProcess();  // kills the process if still running

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  void Kill();  // SIGKILL, and reap
  // SIGTERM, and wait; returns the exit code (or 128+signal), -1 after `timeout`.
  int Terminate(std::chrono::seconds timeout = std::chrono::seconds(30));
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string address_;
  std::string log_path_;
};

// Path of the sluice binary under test.
std::string SluiceBinary();
// The source tree's root (for test scripts and fixtures).
std::string SourceDir();

}  // namespace sluice::testing
