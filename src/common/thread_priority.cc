#include "common/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

namespace sluice {
namespace {

std::atomic<int> g_background_nice{0};

}  // namespace

void SetBackgroundNice(int increment) {
  g_background_nice.store(increment < 0 ? 0 : increment > 19 ? 19 : increment);
}

int BackgroundNice() { return g_background_nice.load(); }

Status EnterBackground() {
  const int increment = BackgroundNice();
  if (increment == 0) return Status::OK();
  // PRIO_PROCESS with a thread id sets that one thread's nice value on Linux.
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) {
    return Status::Internal(std::string("getpriority: ") + std::strerror(errno));
  }
  const int target = current + increment > 19 ? 19 : current + increment;
  if (::setpriority(PRIO_PROCESS, tid, target) != 0) {
    return Status::Internal("setpriority(" + std::to_string(target) +
                            "): " + std::strerror(errno));
  }
  return Status::OK();
}

void RunWithBackgroundPriority(const std::function<void()>& fn) {
  if (BackgroundNice() == 0) {
    fn();
    return;
  }
  std::thread t([&fn] {
    (void)EnterBackground();  // at worst fn runs at the caller's priority
    fn();
  });
  t.join();
}

}  // namespace sluice
