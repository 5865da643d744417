#include "common/thread_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

namespace sluice {
namespace {

int MyNice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

class ThreadPriorityTest : public ::testing::Test {
 protected:
  void TearDown() override { SetBackgroundNice(0); }
};

TEST_F(ThreadPriorityTest, OffByDefaultAndClamped) {
  EXPECT_EQ(BackgroundNice(), 0);
  int seen = -100;
  std::thread([&] {
    ASSERT_TRUE(EnterBackground().ok());
    seen = MyNice();
  }).join();
  EXPECT_EQ(seen, MyNice());  // nothing changed
  SetBackgroundNice(40);
  EXPECT_EQ(BackgroundNice(), 19);
  SetBackgroundNice(-3);
  EXPECT_EQ(BackgroundNice(), 0);
}

TEST_F(ThreadPriorityTest, EnterBackgroundRaisesOnlyTheCallingThread) {
  const int base = MyNice();
  SetBackgroundNice(5);
  int background = -100;
  std::thread([&] {
    ASSERT_TRUE(EnterBackground().ok());
    background = MyNice();
  }).join();
  EXPECT_EQ(background, std::min(base + 5, 19));
  EXPECT_EQ(MyNice(), base);
}

// Threads started inside RunWithBackgroundPriority (as DuckDB starts its workers in
// duckdb_open_ext) keep the background priority after it returns; the caller never has it.
TEST_F(ThreadPriorityTest, ThreadsStartedInsideInheritTheBackgroundPriority) {
  const int base = MyNice();
  SetBackgroundNice(7);
  int inside = -100, worker = -100;
  std::thread t;
  RunWithBackgroundPriority([&] {
    inside = MyNice();
    t = std::thread([&] { worker = MyNice(); });
  });
  t.join();
  EXPECT_EQ(inside, std::min(base + 7, 19));
  EXPECT_EQ(worker, std::min(base + 7, 19));
  EXPECT_EQ(MyNice(), base);
  // Off: fn runs on the calling thread itself.
  SetBackgroundNice(0);
  std::thread::id ran_on;
  RunWithBackgroundPriority([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace sluice
