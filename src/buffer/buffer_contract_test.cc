// The Buffer contract (buffer.h), run against every implementation.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "buffer/buffer.h"
#include "buffer/buffer_test_util.h"
#include "buffer/disk_log.h"
#include "buffer/memory_buffer.h"
#include "buffer/redis_streams.h"

namespace sluice::buffer {
namespace {

using namespace std::chrono_literals;
using testing::AppendAndWait;
using testing::TempDir;

// Every implementation counts a record's payload plus 8 bytes of framing against the cap.
constexpr uint64_t kFramingBytes = 8;
constexpr size_t kAll = 1'000'000;

struct DiskLogKind {
  static std::unique_ptr<Buffer> Make(const std::string& dir, uint64_t max_bytes) {
    DiskLogOptions options;
    options.dir = dir;
    options.segment_bytes = 1000;  // small, so Commit has whole segments to free
    options.max_bytes = max_bytes;
    auto log = DiskLog::Open(options);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }
};

struct MemoryKind {
  static std::unique_ptr<Buffer> Make(const std::string&, uint64_t max_bytes) {
    return std::make_unique<MemoryBuffer>(max_bytes);
  }
};

// Needs SLUICE_TEST_REDIS_URL; each buffer gets a stream of its own.
struct RedisKind {
  static std::unique_ptr<Buffer> Make(const std::string&, uint64_t max_bytes) {
    RedisStreamsOptions options;
    options.url = testing::RedisTestUrl();
    options.stream = testing::UniqueStreamName();
    options.max_bytes = max_bytes;
    auto buffer = RedisStreams::Open(options);
    EXPECT_TRUE(buffer.ok()) << buffer.status().ToString();
    return buffer.ok() ? std::move(*buffer) : nullptr;
  }
};

template <typename Kind>
class BufferContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (std::is_same_v<Kind, RedisKind>) {
      if (testing::RedisTestUrl().empty()) {
        if (testing::RedisRequired()) {
          FAIL() << "SLUICE_REQUIRE_REDIS=1 but SLUICE_TEST_REDIS_URL is unset";
        }
        GTEST_SKIP() << testing::kRedisSkipMessage;
      }
    }
  }

  std::unique_ptr<Buffer> Make(uint64_t max_bytes = 1ull << 30) {
    return Kind::Make(dir_.path(), max_bytes);
  }

  static std::vector<std::string> Payloads(const std::vector<Record>& records) {
    std::vector<std::string> out;
    for (const Record& r : records) out.push_back(r.payload);
    return out;
  }

  TempDir dir_;
};

using Kinds = ::testing::Types<DiskLogKind, MemoryKind, RedisKind>;
class KindNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, DiskLogKind>) return "DiskLog";
    if constexpr (std::is_same_v<T, MemoryKind>) return "MemoryBuffer";
    return "RedisStreams";
  }
};
TYPED_TEST_SUITE(BufferContractTest, Kinds, KindNames);

std::string Payload(int i, size_t size = 100) {
  std::string s = "record-" + std::to_string(i) + "-";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}

TYPED_TEST(BufferContractTest, AppendsReadBackInOrderWithDenseOffsets) {
  auto buffer = this->Make();
  ASSERT_TRUE(AppendAndWait(*buffer, {"a", "bb"}).ok());
  ASSERT_TRUE(AppendAndWait(*buffer, {""}).ok());  // an empty payload is a record too
  ASSERT_TRUE(AppendAndWait(*buffer, {"ccc", "dddd", "eeeee"}).ok());
  ASSERT_TRUE(AppendAndWait(*buffer, {}).ok());  // no records: OK, no offsets used

  auto records = buffer->Read(0, kAll, kAll, 0ms);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 6u);
  for (size_t i = 0; i < records->size(); ++i) EXPECT_EQ((*records)[i].offset, i);
  EXPECT_EQ(this->Payloads(*records),
            (std::vector<std::string>{"a", "bb", "", "ccc", "dddd", "eeeee"}));
  EXPECT_EQ(buffer->Stats().next_offset, 6u);
}

TYPED_TEST(BufferContractTest, ReadsFromAMiddleOffset) {
  auto buffer = this->Make();
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(AppendAndWait(*buffer, {Payload(i)}).ok());

  auto mid = buffer->Read(14, 3, kAll, 0ms);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  ASSERT_EQ(mid->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*mid)[i].offset, 14 + i);
    EXPECT_EQ((*mid)[i].payload, Payload(static_cast<int>(14 + i)));
  }
  auto rest = buffer->Read(17, kAll, kAll, 0ms);  // continues where the last read stopped
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 13u);
  EXPECT_EQ(rest->front().offset, 17u);
  EXPECT_EQ(rest->back().offset, 29u);
  EXPECT_EQ(rest->back().payload, Payload(29));
  auto back = buffer->Read(3, 1, kAll, 0ms);  // and jumps back
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].payload, Payload(3));

  auto at_end = buffer->Read(30, kAll, kAll, 0ms);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->empty());
  auto beyond = buffer->Read(31, kAll, kAll, 0ms);
  EXPECT_EQ(beyond.status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(BufferContractTest, HonoursMaxRecordsAndMaxBytes) {
  auto buffer = this->Make();
  std::vector<std::string> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(Payload(i, 100));
  ASSERT_TRUE(AppendAndWait(*buffer, batch).ok());

  auto four = buffer->Read(0, 4, kAll, 0ms);
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->size(), 4u);
  auto by_bytes = buffer->Read(0, kAll, 250, 0ms);  // 100 + 100 fit, a third would pass 250
  ASSERT_TRUE(by_bytes.ok());
  EXPECT_EQ(by_bytes->size(), 2u);
  auto exact = buffer->Read(5, kAll, 300, 0ms);
  ASSERT_TRUE(exact.ok());
  ASSERT_EQ(exact->size(), 3u);
  EXPECT_EQ(exact->front().offset, 5u);
  auto at_least_one = buffer->Read(0, kAll, 1, 0ms);  // one record even past max_bytes
  ASSERT_TRUE(at_least_one.ok());
  ASSERT_EQ(at_least_one->size(), 1u);
  EXPECT_EQ((*at_least_one)[0].payload, Payload(0, 100));
  auto none = buffer->Read(0, 0, kAll, 0ms);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TYPED_TEST(BufferContractTest, ReadWaitTimesOutEmpty) {
  auto buffer = this->Make();
  auto start = std::chrono::steady_clock::now();
  auto records = buffer->Read(0, kAll, kAll, 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(records->empty());
  EXPECT_GE(waited, 50ms);
}

TYPED_TEST(BufferContractTest, ReadWaitWakesWhenAnAppendLands) {
  auto buffer = this->Make();
  ASSERT_TRUE(AppendAndWait(*buffer, {"before"}).ok());
  Result<std::vector<Record>> got = Status::Internal("not run");
  std::thread reader([&] { got = buffer->Read(1, kAll, kAll, 60s); });
  ASSERT_TRUE(AppendAndWait(*buffer, {"after"}).ok());
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);  // an unwoken read would return empty after 60 s
  EXPECT_EQ((*got)[0].offset, 1u);
  EXPECT_EQ((*got)[0].payload, "after");
}

TYPED_TEST(BufferContractTest, CloseWakesAWaitingRead) {
  auto buffer = this->Make();
  Result<std::vector<Record>> got = std::vector<Record>{};
  std::thread reader([&] { got = buffer->Read(0, kAll, kAll, 60s); });
  buffer->Close();
  reader.join();
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
}

TYPED_TEST(BufferContractTest, CommitFreesAndNeverMovesBack) {
  auto buffer = this->Make();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(AppendAndWait(*buffer, {Payload(i, 200)}).ok());
  const uint64_t used_before = buffer->Stats().used_bytes;
  EXPECT_EQ(used_before, 50 * (200 + kFramingBytes));

  ASSERT_TRUE(buffer->Commit(40).ok());
  BufferStats s = buffer->Stats();
  EXPECT_EQ(s.committed_offset, 40u);
  EXPECT_EQ(s.depth_records, 10u);
  EXPECT_LT(s.used_bytes, used_before);
  EXPECT_GE(s.used_bytes, 10 * (200 + kFramingBytes));  // the uncommitted records stay

  ASSERT_TRUE(buffer->Commit(10).ok());  // lower: ignored
  EXPECT_EQ(buffer->Stats().committed_offset, 40u);
  EXPECT_EQ(buffer->Read(0, kAll, kAll, 0ms).status().code(), StatusCode::kInvalidArgument);
  auto rest = buffer->Read(40, kAll, kAll, 0ms);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->size(), 10u);
  EXPECT_EQ(rest->front().payload, Payload(40, 200));

  EXPECT_EQ(buffer->Commit(51).code(), StatusCode::kInvalidArgument);  // past the end
  ASSERT_TRUE(buffer->Commit(50).ok());
  s = buffer->Stats();
  EXPECT_EQ(s.committed_offset, 50u);
  EXPECT_EQ(s.depth_records, 0u);
  EXPECT_EQ(s.depth_bytes, 0u);
}

TYPED_TEST(BufferContractTest, CapAnswersResourceExhaustedAndStoresNothing) {
  const uint64_t framed = 100 + kFramingBytes;
  auto buffer = this->Make(10 * framed);
  std::vector<std::string> five;
  for (int i = 0; i < 5; ++i) five.push_back(Payload(i));
  ASSERT_TRUE(AppendAndWait(*buffer, five).ok());

  // Six more would pass the cap by one record: refused whole, inline.
  std::vector<std::string> six;
  for (int i = 5; i < 11; ++i) six.push_back(Payload(i));
  bool called = false;
  Status refused;
  buffer->Append(six, [&](Status s) {
    called = true;
    refused = std::move(s);
  });
  ASSERT_TRUE(called) << "a refusal is reported before Append returns";
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.ToString();
  BufferStats s = buffer->Stats();
  EXPECT_EQ(s.next_offset, 5u);
  EXPECT_EQ(s.used_bytes, 5 * framed);
  EXPECT_EQ(s.capacity_bytes, 10 * framed);

  // Exactly up to the cap is fine.
  six.pop_back();
  ASSERT_TRUE(AppendAndWait(*buffer, six).ok());
  EXPECT_EQ(AppendAndWait(*buffer, {""}).code(), StatusCode::kResourceExhausted);
  auto records = buffer->Read(0, kAll, kAll, 0ms);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 10u);
  EXPECT_EQ(records->back().payload, Payload(9));
  EXPECT_EQ(buffer->Stats().used_bytes, 10 * framed);
}

TYPED_TEST(BufferContractTest, CloseCompletesAcceptedAppendsAndRefusesLaterOnes) {
  auto buffer = this->Make();
  std::atomic<int> ok{0};
  std::atomic<int> calls{0};
  for (int i = 0; i < 100; ++i) {
    buffer->Append({Payload(i)}, [&](Status s) {
      calls.fetch_add(1);
      if (s.ok()) ok.fetch_add(1);
    });
  }
  buffer->Close();
  EXPECT_EQ(calls.load(), 100);
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(buffer->Stats().next_offset, 100u);

  EXPECT_EQ(AppendAndWait(*buffer, {"late"}).code(), StatusCode::kUnavailable);
  buffer->Close();  // idempotent
  EXPECT_EQ(AppendAndWait(*buffer, {"later"}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(buffer->Read(0, kAll, kAll, 0ms).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(buffer->Stats().next_offset, 100u);
}

TYPED_TEST(BufferContractTest, StatsAreConsistent) {
  auto buffer = this->Make(1'000'000);
  BufferStats s = buffer->Stats();
  EXPECT_EQ(s.next_offset, 0u);
  EXPECT_EQ(s.committed_offset, 0u);
  EXPECT_EQ(s.depth_records, 0u);
  EXPECT_EQ(s.depth_bytes, 0u);
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.capacity_bytes, 1'000'000u);

  for (int i = 0; i < 20; ++i) ASSERT_TRUE(AppendAndWait(*buffer, {Payload(i, 50)}).ok());
  s = buffer->Stats();
  EXPECT_EQ(s.next_offset, 20u);
  EXPECT_EQ(s.depth_records, 20u);
  EXPECT_EQ(s.used_bytes, 20 * (50 + kFramingBytes));
  EXPECT_EQ(s.depth_bytes, s.used_bytes);

  ASSERT_TRUE(buffer->Commit(5).ok());
  s = buffer->Stats();
  EXPECT_EQ(s.committed_offset, 5u);
  EXPECT_EQ(s.depth_records, s.next_offset - s.committed_offset);
  EXPECT_LE(s.depth_bytes, s.used_bytes);
  EXPECT_GE(s.depth_bytes, 15 * 50u);
  EXPECT_LE(s.depth_bytes, 15 * (50 + kFramingBytes));
}

}  // namespace
}  // namespace sluice::buffer
