#include "sluice_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "http/test_client.h"

extern char** environ;

namespace sluice::testing {

std::string SluiceBinary() { return SLUICE_BINARY; }
std::string SourceDir() { return SLUICE_SOURCE_DIR; }

namespace {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<SluiceProcess>> SluiceProcess::Start(const std::string& data_dir,
                                                            std::vector<std::string> args) {
  auto p = std::unique_ptr<SluiceProcess>(new SluiceProcess());
  std::filesystem::create_directories(data_dir);
  std::string addr_file = data_dir + "/serve.addr";
  std::filesystem::remove(addr_file);
  p->log_path_ = data_dir + ".log";
  std::vector<std::string> argv = {SluiceBinary(), "serve", "--listen", "127.0.0.1:0",
                                   "--data-dir", data_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  p->pid_ = Spawn(argv, p->log_path_);
  if (p->pid_ < 0) return Status::IOError("cannot spawn " + SluiceBinary());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus;
    if (::waitpid(p->pid_, &wstatus, WNOHANG) == p->pid_) {
      p->pid_ = -1;
      return Status::Unavailable("sluice exited during start: " + ReadFile(p->log_path_));
    }
    std::string addr = ReadFile(addr_file);
    if (!addr.empty() && addr.back() == '\n') {
      addr.pop_back();
      http::TestClient client(addr);
      auto r = client.Get("/healthz");
      if (r.ok() && r->status == 200) {
        p->address_ = addr;
        return p;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::DeadlineExceeded("sluice did not become healthy in 20 s: " + p->Log());
}

int SluiceProcess::RunToCompletion(std::vector<std::string> args, std::string* output) {
  args.insert(args.begin(), SluiceBinary());
  return RunProgram(std::move(args), output);
}

int SluiceProcess::RunProgram(std::vector<std::string> args, std::string* output) {
  TempDir dir;
  std::string log = dir.path() + "/out.log";
  pid_t pid = Spawn(args, log);
  if (pid < 0) return -1;
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (output) *output = ReadFile(log);
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

SluiceProcess::~SluiceProcess() {
  if (pid_ > 0) Kill();
}

void SluiceProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int wstatus;
  ::waitpid(pid_, &wstatus, 0);
  pid_ = -1;
}

int SluiceProcess::Terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string SluiceProcess::Log() const { return ReadFile(log_path_); }

}  // namespace sluice::testing
