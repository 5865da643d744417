#include "common/writeback_pacer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <utility>

#include "common/status.h"
#include "common/thread_priority.h"
#include "common/unique_fd.h"

namespace sluice {

void StartWriteback(int fd) { (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

WritebackPacer::WritebackPacer(WritebackPacerOptions options) : options_(std::move(options)) {}

WritebackPacer::~WritebackPacer() { Stop(); }

int WritebackPacer::PaceOnce() const {
  int paced = 0;
  for (const std::string& dir : options_.dirs) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code type_ec;
      if (!it->is_regular_file(type_ec)) continue;
      // O_RDONLY is enough: sync_file_range needs no write access, and opening never
      // truncates or creates what another writer owns.
      UniqueFd fd(::open(it->path().c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0) continue;  // gone since the listing, or not ours to read
      StartWriteback(fd.get());
      ++paced;
    }
  }
  return paced;
}

void WritebackPacer::Start() {
  SLUICE_CHECK_MSG(!thread_.joinable(), "WritebackPacer::Start called twice");
  SLUICE_CHECK(options_.interval.count() > 0);
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void WritebackPacer::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void WritebackPacer::Loop(const std::stop_token& stop) {
  (void)EnterBackground();
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(wake_mu_);
      (void)wake_cv_.wait_for(lock, stop, options_.interval, [] { return false; });
    }
    if (stop.stop_requested()) break;
    PaceOnce();
  }
}

}  // namespace sluice
