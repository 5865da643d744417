#include "common/writeback_pacer.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "common/unique_fd.h"

namespace sluice {
namespace {

// cachestat(2) (Linux 6.5; Debian 12's headers predate it): the page cache state of a file.
constexpr long kSysCachestat = 451;
struct CachestatRange {
  uint64_t off, len;
};
struct Cachestat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// Dirty pages of `path`, or -1 when the kernel has no cachestat.
int64_t DirtyPages(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  CachestatRange range{0, 0};  // len 0: to the end of the file
  Cachestat cs{};
  if (fd.get() < 0 || ::syscall(kSysCachestat, fd.get(), &range, &cs, 0) != 0) return -1;
  return static_cast<int64_t>(cs.nr_dirty);
}

void WriteFile(const std::string& path, size_t bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_GE(fd.get(), 0);
  std::string chunk(1 << 20, 'x');
  for (size_t done = 0; done < bytes; done += chunk.size()) {
    ASSERT_EQ(::write(fd.get(), chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  }
}

TEST(WritebackPacer, PacesTheRegularFilesDirectlyInItsDirs) {
  testing::TempDir dir;
  const std::string a = dir.path() + "/a", b = dir.path() + "/b";
  WriteFile(a + "-file", 4096);
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b);
  WriteFile(a + "/one", 4096);
  WriteFile(a + "/two", 4096);
  std::filesystem::create_directories(a + "/sub");
  WriteFile(a + "/sub/not-paced", 4096);
  WriteFile(b + "/three", 4096);
  WritebackPacer pacer({.dirs = {a, b, dir.path() + "/missing"}});
  EXPECT_EQ(pacer.PaceOnce(), 3);  // one, two, three; not the subdirectory's, not a-file
}

// The point of the pacer: the dirty pages of a file it paces are written back within moments,
// where the kernel would keep them dirty for vm.dirty_expire_centisecs (30 s by default) or
// until the writer's fsync.
TEST(WritebackPacer, DirtyPagesOfAPacedFileAreWrittenBackSoon) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/paced");
  const std::string paced = dir.path() + "/paced/file";
  WriteFile(paced, 32 << 20);
  const int64_t before = DirtyPages(paced);
  if (before < 0) GTEST_SKIP() << "this kernel has no cachestat(2) (Linux 6.5+) to observe it";
  if (before == 0) GTEST_SKIP() << "the kernel wrote the file back before the test could look";

  WritebackPacer pacer({.dirs = {dir.path() + "/paced"}, .interval = std::chrono::milliseconds(50)});
  pacer.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int64_t dirty = before;
  while (dirty > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    dirty = DirtyPages(paced);
  }
  pacer.Stop();
  EXPECT_EQ(dirty, 0) << before << " dirty pages before";
}

}  // namespace
}  // namespace sluice
