// DiskLog beyond the shared contract: files, recovery, group commit and fault injection.
#include "buffer/disk_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "buffer/buffer_test_util.h"
#include "common/metrics.h"

namespace sluice::buffer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::AppendAndWait;
using testing::TempDir;

constexpr size_t kAll = 1'000'000;
constexpr uint64_t kFramed100 = 108;  // a 100-byte payload with its 8-byte frame

std::string Payload(int i, size_t size = 100) {
  std::string s = "record-" + std::to_string(i) + "-";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}

std::string SegmentName(uint64_t base) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.log", static_cast<unsigned long long>(base));
  return name;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.ends_with(".log")) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> Names(std::initializer_list<uint64_t> bases) {
  std::vector<std::string> out;
  for (uint64_t b : bases) out.push_back(SegmentName(b));
  return out;
}

void FlipByte(const std::string& path, uint64_t pos) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(pos));
  char c = 0;
  f.read(&c, 1);
  ASSERT_TRUE(f);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(static_cast<std::streamoff>(pos));
  f.write(&c, 1);
  ASSERT_TRUE(f);
}

DiskLogOptions Options(const std::string& dir, uint64_t segment_bytes = 64 << 20) {
  DiskLogOptions o;
  o.dir = dir;
  o.segment_bytes = segment_bytes;
  return o;
}

std::unique_ptr<DiskLog> MustOpen(const DiskLogOptions& options) {
  auto log = DiskLog::Open(options);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(*log) : nullptr;
}

std::vector<Record> ReadAll(DiskLog& log, uint64_t from) {
  auto r = log.Read(from, kAll, SIZE_MAX, 0ms);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(*r) : std::vector<Record>{};
}

// Checks records [from, from + n) hold Payload(i) for offset i.
void ExpectPayloads(const std::vector<Record>& records, uint64_t from, size_t n) {
  ASSERT_EQ(records.size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(records[i].offset, from + i);
    EXPECT_EQ(records[i].payload, Payload(static_cast<int>(from + i)));
  }
}

// Forwards to the POSIX file layer, failing on request (LevelDB's fault-injection Env).
class FaultFileSystem final : public LogFileSystem {
 public:
  // Sync calls that succeed before one fails with EIO; -1: never fail.
  std::atomic<int> syncs_before_failure{-1};
  std::atomic<bool> fail_next_write{false};  // writes half the bytes, then EIO
  std::atomic<bool> fail_truncate{false};    // every truncate fails with EIO while set

  class File final : public LogFile {
   public:
    File(FaultFileSystem* fs, std::unique_ptr<LogFile> base) : fs_(fs), base_(std::move(base)) {}
    Status Append(std::span<const std::string_view> pieces) override {
      if (fs_->fail_next_write.exchange(false)) {
        std::string all;
        for (std::string_view p : pieces) all += p;
        std::string_view half(all.data(), all.size() / 2);
        SLUICE_RETURN_IF_ERROR(base_->Append(std::span<const std::string_view>(&half, 1)));
        return Status::FromErrno("write (injected)", EIO);
      }
      return base_->Append(pieces);
    }
    Status Sync() override {
      int n = fs_->syncs_before_failure.load();
      if (n == 0) {
        fs_->syncs_before_failure.store(-1);
        return Status::FromErrno("fdatasync (injected)", EIO);
      }
      if (n > 0) fs_->syncs_before_failure.store(n - 1);
      return base_->Sync();
    }
    Status Truncate(uint64_t size) override {
      if (fs_->fail_truncate.load()) return Status::FromErrno("ftruncate (injected)", EIO);
      return base_->Truncate(size);
    }
    Status ReadAt(uint64_t pos, size_t n, char* dst, size_t* read) const override {
      return base_->ReadAt(pos, n, dst, read);
    }
    Result<uint64_t> Size() const override { return base_->Size(); }

   private:
    FaultFileSystem* fs_;
    std::unique_ptr<LogFile> base_;
  };

  Status CreateDir(const std::string& dir) override { return base_->CreateDir(dir); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  Result<std::unique_ptr<LogFile>> OpenLogFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(auto f, base_->OpenLogFile(path));
    return std::unique_ptr<LogFile>(std::make_unique<File>(this, std::move(f)));
  }
  Result<std::unique_ptr<LogFile>> CreateLogFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(auto f, base_->CreateLogFile(path));
    return std::unique_ptr<LogFile>(std::make_unique<File>(this, std::move(f)));
  }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Result<std::string> ReadSmallFile(const std::string& path) override {
    return base_->ReadSmallFile(path);
  }
  Status ReplaceSmallFile(const std::string& path, std::string_view contents) override {
    return base_->ReplaceSmallFile(path, contents);
  }
  Result<std::unique_ptr<DirLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

 private:
  std::shared_ptr<LogFileSystem> base_ = NewPosixLogFileSystem();
};

TEST(DiskLog, ReopenPreservesRecordsOffsetsAndCommittedOffset) {
  TempDir dir;
  {
    auto log = MustOpen(Options(dir.path(), 1000));
    for (int i = 0; i < 100; i += 10) {
      std::vector<std::string> batch;
      for (int j = i; j < i + 10; ++j) batch.push_back(Payload(j));
      ASSERT_TRUE(AppendAndWait(*log, batch).ok());
    }
    ASSERT_TRUE(log->Commit(30).ok());
  }
  auto log = MustOpen(Options(dir.path(), 1000));
  BufferStats s = log->Stats();
  EXPECT_EQ(s.next_offset, 100u);
  EXPECT_EQ(s.committed_offset, 30u);
  EXPECT_EQ(s.depth_records, 70u);
  ExpectPayloads(ReadAll(*log, 30), 30, 70);
  // 9 records per segment: the one holding offset 30 starts at 27 and is kept.
  ExpectPayloads(ReadAll(*log, 27), 27, 73);
  EXPECT_EQ(log->Read(26, kAll, kAll, 0ms).status().code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(AppendAndWait(*log, {Payload(100)}).ok());
  ExpectPayloads(ReadAll(*log, 99), 99, 2);
}

TEST(DiskLog, RollsSegmentsAndDeletesCommittedOnes) {
  TempDir dir;
  auto log = MustOpen(Options(dir.path(), 1000));  // 9 records of 108 bytes per segment
  std::vector<std::string> first;
  for (int i = 0; i < 20; ++i) first.push_back(Payload(i));
  ASSERT_TRUE(AppendAndWait(*log, first).ok());  // one group that rolls twice
  for (int i = 20; i < 45; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({0, 9, 18, 27, 36}));
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(0)), 9 * kFramed100);
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(36)), 9 * kFramed100);

  // A record bigger than a segment gets one of its own; the next one starts another.
  ASSERT_TRUE(AppendAndWait(*log, {std::string(2000, 'x')}).ok());
  ASSERT_TRUE(AppendAndWait(*log, {Payload(46)}).ok());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({0, 9, 18, 27, 36, 45, 46}));
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(45)), 2008u);
  auto crossing = log->Read(0, 45, SIZE_MAX, 0ms);  // one read through five segments
  ASSERT_TRUE(crossing.ok());
  ExpectPayloads(*crossing, 0, 45);

  const uint64_t used = log->Stats().used_bytes;
  EXPECT_EQ(used, 45 * kFramed100 + 2008 + kFramed100);
  ASSERT_TRUE(log->Commit(20).ok());  // frees [0, 9) and [9, 18); 18 holds 18 and 19
  EXPECT_EQ(SegmentFiles(dir.path()), Names({18, 27, 36, 45, 46}));
  EXPECT_EQ(log->Stats().used_bytes, used - 18 * kFramed100);

  ASSERT_TRUE(log->Commit(47).ok());  // everything, but the active segment stays
  EXPECT_EQ(SegmentFiles(dir.path()), Names({46}));
  EXPECT_EQ(log->Stats().used_bytes, kFramed100);
  log.reset();

  log = MustOpen(Options(dir.path(), 1000));
  BufferStats s = log->Stats();
  EXPECT_EQ(s.next_offset, 47u);
  EXPECT_EQ(s.committed_offset, 47u);
  EXPECT_EQ(s.used_bytes, kFramed100);
  ExpectPayloads(ReadAll(*log, 46), 46, 1);
}

TEST(DiskLog, SequentialAndRandomReadsAcrossSegments) {
  TempDir dir;
  auto log = MustOpen(Options(dir.path(), 1000));
  for (int i = 0; i < 45; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());
  uint64_t next = 0;
  while (next < 45) {
    auto chunk = log->Read(next, 4, kAll, 0ms);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    ASSERT_EQ(chunk->size(), std::min<size_t>(4, 45 - next));
    ExpectPayloads(*chunk, next, chunk->size());
    next += chunk->size();
    if (next == 20) ExpectPayloads(ReadAll(*log, 7), 7, 38);  // a jump between reads
  }
  EXPECT_EQ(next, 45u);
  for (uint64_t at : {9u, 8u, 17u, 18u, 44u, 0u}) {
    auto one = log->Read(at, 1, kAll, 0ms);
    ASSERT_TRUE(one.ok());
    ExpectPayloads(*one, at, 1);
  }
}

// Writes 5 records of 100 bytes into a fresh log in `dir`; returns the segment's path.
std::string WriteFive(const std::string& dir) {
  auto log = MustOpen(Options(dir));
  std::vector<std::string> five;
  for (int i = 0; i < 5; ++i) five.push_back(Payload(i));
  EXPECT_TRUE(AppendAndWait(*log, five).ok());
  return dir + "/" + SegmentName(0);
}

TEST(DiskLog, TornTailIsTruncatedAndAppendsContinue) {
  // Cut positions in the 540-byte segment: inside a header, just after one, inside a payload,
  // one byte short of the end, and at a record boundary (nothing torn).
  for (uint64_t cut : {uint64_t{3}, 2 * kFramed100 + 5, 4 * kFramed100 + 8, 4 * kFramed100 + 50,
                       5 * kFramed100 - 1, 3 * kFramed100}) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut));
    TempDir dir;
    std::string segment = WriteFive(dir.path());
    fs::resize_file(segment, cut);
    const uint64_t complete = cut / kFramed100;

    auto log = MustOpen(Options(dir.path()));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->Stats().next_offset, complete);
    EXPECT_EQ(fs::file_size(segment), complete * kFramed100);
    ExpectPayloads(ReadAll(*log, 0), 0, complete);

    ASSERT_TRUE(AppendAndWait(*log, {Payload(static_cast<int>(complete))}).ok());
    log.reset();
    log = MustOpen(Options(dir.path()));
    ExpectPayloads(ReadAll(*log, 0), 0, complete + 1);
  }
}

TEST(DiskLog, FlippedByteInTheLastRecordIsATornTail) {
  TempDir dir;
  std::string segment = WriteFive(dir.path());
  FlipByte(segment, 4 * kFramed100 + 8 + 42);
  auto log = MustOpen(Options(dir.path()));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->Stats().next_offset, 4u);
  EXPECT_EQ(fs::file_size(segment), 4 * kFramed100);
  ExpectPayloads(ReadAll(*log, 0), 0, 4);
}

TEST(DiskLog, FlippedByteFollowedByValidRecordsFailsOpen) {
  for (uint64_t pos : {2 * kFramed100 + 8 + 10 /* payload */, 2 * kFramed100 + 1 /* length */,
                       2 * kFramed100 + 5 /* CRC */}) {
    SCOPED_TRACE("flip at byte " + std::to_string(pos));
    TempDir dir;
    std::string segment = WriteFive(dir.path());
    FlipByte(segment, pos);
    auto log = DiskLog::Open(Options(dir.path()));
    ASSERT_EQ(log.status().code(), StatusCode::kCorruption) << log.status().ToString();
    const std::string msg = log.status().message();
    EXPECT_NE(msg.find(segment), std::string::npos) << msg;
    EXPECT_NE(msg.find("at byte " + std::to_string(2 * kFramed100)), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncate -s 216"), std::string::npos) << msg;
    EXPECT_EQ(fs::file_size(segment), 5 * kFramed100);  // nothing was cut
  }
}

TEST(DiskLog, DamageInANonLastSegmentFailsOpen) {
  TempDir dir;
  {
    auto log = MustOpen(Options(dir.path(), 1000));
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());
  }
  // Even the last record of segment 0 is not a torn tail: segment 9 follows it.
  std::string first = dir.path() + "/" + SegmentName(0);
  FlipByte(first, 8 * kFramed100 + 20);
  auto log = DiskLog::Open(Options(dir.path(), 1000));
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find(first + " at byte 864"), std::string::npos)
      << log.status().message();
  EXPECT_NE(log.status().message().find("not the last segment"), std::string::npos);
  EXPECT_EQ(fs::file_size(first), 9 * kFramed100);
}

TEST(DiskLog, MissingSegmentFailsOpen) {
  TempDir dir;
  {
    auto log = MustOpen(Options(dir.path(), 1000));
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());
  }
  fs::remove(dir.path() + "/" + SegmentName(9));
  auto log = DiskLog::Open(Options(dir.path(), 1000));
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("missing"), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find(SegmentName(18)), std::string::npos);
}

TEST(DiskLog, RecordDamagedAfterOpenReadsAsCorruption) {
  TempDir dir;
  auto log = MustOpen(Options(dir.path()));
  std::vector<std::string> five;
  for (int i = 0; i < 5; ++i) five.push_back(Payload(i));
  ASSERT_TRUE(AppendAndWait(*log, five).ok());
  std::string segment = dir.path() + "/" + SegmentName(0);
  FlipByte(segment, 3 * kFramed100 + 8 + 99);

  auto before = log->Read(0, 3, kAll, 0ms);  // records before the damage still read
  ASSERT_TRUE(before.ok());
  ExpectPayloads(*before, 0, 3);
  auto damaged = log->Read(3, kAll, kAll, 0ms);
  ASSERT_EQ(damaged.status().code(), StatusCode::kCorruption);
  EXPECT_NE(damaged.status().message().find(segment + " at byte 324"), std::string::npos)
      << damaged.status().message();
  EXPECT_EQ(log->Read(0, kAll, kAll, 0ms).status().code(), StatusCode::kCorruption);
  ExpectPayloads(ReadAll(*log, 4), 4, 1);
}

TEST(DiskLog, ConcurrentAppendersShareFsyncs) {
  TempDir dir;
  auto log = MustOpen(Options(dir.path()));
  auto& hist = metrics::Default().GetHistogram("sluice_buffer_fsync_seconds", "");
  const auto hist_before = hist.Snap();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Like an ingest handler: each append waits for its acknowledgement.
      for (int i = 0; i < kPerThread; ++i) {
        std::string p = std::to_string(t) + ":" + std::to_string(i);
        if (!AppendAndWait(*log, {p}).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  std::vector<Record> all = ReadAll(*log, 0);
  ASSERT_EQ(all.size(), size_t{kThreads * kPerThread});
  std::vector<int> next(kThreads, 0);  // each thread's records appear once, in its order
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].offset, i);
    size_t colon = all[i].payload.find(':');
    int t = std::stoi(all[i].payload.substr(0, colon));
    int n = std::stoi(all[i].payload.substr(colon + 1));
    ASSERT_EQ(n, next[t]) << "thread " << t;
    ++next[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);

  const uint64_t fsyncs = log->FsyncCount();
  EXPECT_GT(fsyncs, 0u);
  EXPECT_LE(fsyncs * 2, uint64_t{kThreads * kPerThread}) << "fsyncs were not shared";
  auto hist_after = hist.Snap();
  for (size_t i = 0; i < hist_after.counts.size(); ++i) {
    hist_after.counts[i] -= hist_before.counts[i];
  }
  hist_after.count -= hist_before.count;
  EXPECT_EQ(hist_after.count, fsyncs);
  std::printf(
      "[ measure  ] %d appends, %llu fsyncs (%.1f appends/fsync), fsync median %.3f ms, "
      "p99 %.3f ms\n",
      kThreads * kPerThread, static_cast<unsigned long long>(fsyncs),
      static_cast<double>(kThreads * kPerThread) / static_cast<double>(fsyncs),
      hist_after.Quantile(0.5) * 1e3, hist_after.Quantile(0.99) * 1e3);
}

TEST(DiskLog, FailedFsyncFailsTheGroupAndTheLogRecovers) {
  TempDir dir;
  auto faults = std::make_shared<FaultFileSystem>();
  DiskLogOptions options = Options(dir.path());
  options.file_system = faults;
  auto log = MustOpen(options);
  std::vector<std::string> three = {Payload(0), Payload(1), Payload(2)};
  ASSERT_TRUE(AppendAndWait(*log, three).ok());

  faults->syncs_before_failure = 0;
  Status failed = AppendAndWait(*log, {"lost-1", "lost-2"});
  EXPECT_EQ(failed.code(), StatusCode::kIOError);
  EXPECT_NE(failed.message().find("Input/output error"), std::string::npos) << failed.ToString();
  EXPECT_FALSE(log->Failed());
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(0)), 3 * kFramed100);  // rolled back
  EXPECT_EQ(log->Stats().next_offset, 3u);
  EXPECT_EQ(log->Stats().used_bytes, 3 * kFramed100);

  ASSERT_TRUE(AppendAndWait(*log, {Payload(3)}).ok());  // the file layer works again
  ExpectPayloads(ReadAll(*log, 0), 0, 4);
  log.reset();
  log = MustOpen(Options(dir.path()));
  ExpectPayloads(ReadAll(*log, 0), 0, 4);
}

TEST(DiskLog, FailedWriteFailsTheGroupAndTheLogRecovers) {
  TempDir dir;
  auto faults = std::make_shared<FaultFileSystem>();
  DiskLogOptions options = Options(dir.path());
  options.file_system = faults;
  auto log = MustOpen(options);
  ASSERT_TRUE(AppendAndWait(*log, {Payload(0)}).ok());

  faults->fail_next_write = true;  // half the group reaches the file, then EIO
  EXPECT_EQ(AppendAndWait(*log, {std::string(1000, 'z'), "y"}).code(), StatusCode::kIOError);
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(0)), kFramed100);
  ASSERT_TRUE(AppendAndWait(*log, {Payload(1)}).ok());
  ExpectPayloads(ReadAll(*log, 0), 0, 2);
}

TEST(DiskLog, FailedFsyncAfterARollRemovesTheNewSegment) {
  TempDir dir;
  auto faults = std::make_shared<FaultFileSystem>();
  DiskLogOptions options = Options(dir.path(), 1000);
  options.file_system = faults;
  auto log = MustOpen(options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());

  // This group fills segment 0 (synced: OK), rolls to segment 9 and fails to sync that.
  faults->syncs_before_failure = 1;
  std::vector<std::string> group(8, std::string(100, 'L'));  // 4 fit in segment 0
  EXPECT_EQ(AppendAndWait(*log, group).code(), StatusCode::kIOError);
  EXPECT_FALSE(log->Failed());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({0}));
  EXPECT_EQ(fs::file_size(dir.path() + "/" + SegmentName(0)), 5 * kFramed100);

  for (int i = 5; i < 12; ++i) ASSERT_TRUE(AppendAndWait(*log, {Payload(i)}).ok());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({0, 9}));
  ExpectPayloads(ReadAll(*log, 0), 0, 12);
  log.reset();
  log = MustOpen(Options(dir.path(), 1000));
  ExpectPayloads(ReadAll(*log, 0), 0, 12);
}

TEST(DiskLog, FsyncFailureThatCannotBeUndoneEntersTheFailedState) {
  TempDir dir;
  auto faults = std::make_shared<FaultFileSystem>();
  DiskLogOptions options = Options(dir.path());
  options.file_system = faults;
  auto log = MustOpen(options);
  ASSERT_TRUE(AppendAndWait(*log, {Payload(0), Payload(1), Payload(2)}).ok());

  faults->syncs_before_failure = 0;
  faults->fail_truncate = true;
  EXPECT_EQ(AppendAndWait(*log, {Payload(3)}).code(), StatusCode::kIOError);
  EXPECT_TRUE(log->Failed());
  faults->fail_truncate = false;  // even once the disk recovers, the log stays failed
  bool inline_call = false;
  Status refused;
  log->Append({Payload(4)}, [&](Status s) {
    inline_call = true;
    refused = std::move(s);
  });
  EXPECT_TRUE(inline_call);
  EXPECT_EQ(refused.code(), StatusCode::kIOError);
  EXPECT_NE(refused.message().find("failed state"), std::string::npos) << refused.ToString();
  ExpectPayloads(ReadAll(*log, 0), 0, 3);  // durable records stay readable
  EXPECT_EQ(log->Stats().next_offset, 3u);
  log.reset();

  // A restart recovers. The record whose fsync "failed" was in fact written, so it comes
  // back: its caller was told IOError and retries; dedup by messageId drops the copy.
  log = MustOpen(Options(dir.path()));
  EXPECT_FALSE(log->Failed());
  ExpectPayloads(ReadAll(*log, 0), 0, 4);
  ASSERT_TRUE(AppendAndWait(*log, {Payload(4)}).ok());
}

TEST(DiskLog, FullLogRefusesUntilCommitFreesSegments) {
  TempDir dir;
  DiskLogOptions options = Options(dir.path(), 1000);
  options.max_bytes = 3000;
  auto log = MustOpen(options);
  int accepted = 0;
  Status st;
  while ((st = AppendAndWait(*log, {Payload(accepted)})).ok()) ++accepted;
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_EQ(accepted, 27);  // 27 * 108 = 2916; one more would be 3024
  EXPECT_EQ(log->Stats().used_bytes, 27 * kFramed100);
  EXPECT_EQ(SegmentFiles(dir.path()), Names({0, 9, 18}));

  ASSERT_TRUE(log->Commit(5).ok());  // frees nothing: segment 0 still holds 5..8
  EXPECT_EQ(AppendAndWait(*log, {Payload(27)}).code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(log->Commit(9).ok());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({9, 18}));
  ASSERT_TRUE(AppendAndWait(*log, {Payload(27)}).ok());
  EXPECT_EQ(SegmentFiles(dir.path()), Names({9, 18, 27}));
  ExpectPayloads(ReadAll(*log, 9), 9, 19);
}

TEST(DiskLog, RejectsBadOptionsAndASecondOpenOfTheSameDirectory) {
  EXPECT_EQ(DiskLog::Open(DiskLogOptions{}).status().code(), StatusCode::kInvalidArgument);
  TempDir dir;
  EXPECT_EQ(DiskLog::Open(Options(dir.path(), 0)).status().code(), StatusCode::kInvalidArgument);
  auto nested = MustOpen(Options(dir.path() + "/a/b"));  // created with its parents
  ASSERT_NE(nested, nullptr);
  auto second = DiskLog::Open(Options(dir.path() + "/a/b"));
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().ToString();
  nested.reset();
  EXPECT_TRUE(DiskLog::Open(Options(dir.path() + "/a/b")).ok());
}

}  // namespace
}  // namespace sluice::buffer
