// DiskLog: the durable Buffer — an append-only segment log on local disk with group commit.
//
// Layout: segment files in `dir`, each named by the offset of its first record in 20 digits
// (`00000000000000000042.log`), holding records back to back, each framed as
//   [u32 LE payload length][u32 LE CRC32C of the 4 length bytes then the payload][payload].
// A new segment starts when the next record would take the active one past segment_bytes (a
// record bigger than a segment gets a segment of its own). `committed.offset` holds the last
// committed offset (advisory: it only lets Stats and segment deletion survive a restart; the
// hot store's own offsets are the truth for exactly-once). `LOCK` is flock()ed while open.
//
// Guarantees:
//   - An OK callback means the records were written and fdatasync()ed (and, for a new segment,
//     the directory fsync()ed). Readers see records only once they are durable.
//   - Group commit: Append only queues; one writer thread takes everything queued, writes it
//     with as few writev() calls as it can, fdatasyncs once and then runs every callback of the
//     group. Appends that arrive during an fsync form the next group, so concurrent appenders
//     share fsyncs.
//   - Write/fsync failure policy: every callback of the failed group gets IOError. The log then
//     removes any segment the group created and truncates the segment it was appending to back
//     to its size before the group (and fsyncs that), because after a failed fsync the kernel
//     may already have dropped the unwritten pages (PostgreSQL "fsyncgate"): the bytes past the
//     last good fsync are of unknown state, so they are cut away rather than retried. If that
//     works, the log keeps accepting appends (a transient EIO/ENOSPC costs one group). If it
//     does not, the log enters a failed state: every later Append gets IOError until the
//     process reopens the log (recovery then checks every record's CRC). Records of a failed
//     group may still surface after a crash in that window; their callers were told IOError
//     and retry, and ingest's messageId dedup drops the duplicate.
//   - Cap: an append that would take the bytes of segment files (plus appends accepted but not
//     yet written) past max_bytes gets ResourceExhausted inline and nothing is written.
//     Commit frees whole segments only, never the active one.
//   - Recovery (Open) reads every segment and checks every CRC, so Open takes time in
//     proportion to the bytes retained. Offsets must run on without gaps from one segment to
//     the next. In the last segment a torn tail — an incomplete header, a length past the end
//     of file, or a bad CRC — with no valid record anywhere after it is truncated away with one
//     warning. Damage followed by a valid record, or damage in any other segment, fails Open
//     with Corruption naming the file and byte and what the operator can do. A record that was
//     complete and valid is never dropped.
//
// Concurrency: thread-safe. Append from any number of threads; callbacks run on the writer
// thread (or inline when refused), must be short, and must not call Append or Close. Read and
// Commit are for one loader at a time (they are safe, not fair, with more). Open starts the
// writer thread; Close (or the destructor) stops it.
//
// Limits: a payload is at most 4 GiB - 1 bytes (u32 length). One process per directory.
// Every segment keeps an open descriptor (max_bytes / segment_bytes of them at most).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buffer/buffer.h"
#include "buffer/log_file.h"
#include "common/metrics.h"

namespace sluice::buffer {

struct DiskLogOptions {
  std::string dir;                             // created (with parents) if missing
  uint64_t segment_bytes = 64ull << 20;        // roll to a new segment past this
  uint64_t max_bytes = 8ull << 30;             // cap on bytes of segment files kept on disk
  bool fsync = true;                           // false only for tests and benchmarks
  std::shared_ptr<LogFileSystem> file_system;  // nullptr: the POSIX file system
};

class DiskLog final : public Buffer {
 public:
  // Opens (or creates) the log in options.dir, recovers it as described above and starts the
  // writer thread. InvalidArgument for bad options, Corruption for damage recovery must not
  // repair, IOError when the file system fails, Unavailable when the directory is locked.
  static Result<std::unique_ptr<DiskLog>> Open(const DiskLogOptions& options);

  ~DiskLog() override;  // calls Close
  DiskLog(const DiskLog&) = delete;
  DiskLog& operator=(const DiskLog&) = delete;

  // See buffer.h and the header comment. Also InvalidArgument (inline) for a payload of 4 GiB
  // or more, and IOError (inline) in the failed state.
  void Append(std::vector<std::string> records, AppendCallback done) override;
  // See buffer.h. Corruption names the segment file and byte position. Unavailable once
  // closed (a Read waiting when Close is called returns Unavailable).
  Result<std::vector<Record>> Read(uint64_t from, size_t max_records, size_t max_bytes,
                                   std::chrono::milliseconds wait) override;
  // See buffer.h. InvalidArgument beyond the last durable record. Deletes the segments that
  // hold only records below `offset` and rewrites committed.offset; IOError if either fails
  // (the in-memory committed offset has moved regardless). Unavailable once closed.
  Status Commit(uint64_t offset) override;
  BufferStats Stats() const override;
  // See buffer.h. Must not be called from an append callback.
  void Close() override;

  // Number of data fdatasync() calls this log has made since Open (for tests and benchmarks;
  // the process-wide total is the sluice_buffer_fsyncs_total metric).
  uint64_t FsyncCount() const { return fsync_count_.load(std::memory_order_relaxed); }
  // True once a failed write/fsync could not be rolled back (see the header comment).
  bool Failed() const;

 private:
  struct Segment;
  struct Pending;
  struct Touched;
  struct Cursor {
    uint64_t offset = 0;    // offset of the record at `pos`
    uint64_t seg_base = 0;  // segment holding it
    uint64_t pos = 0;       // byte position in that segment
    bool valid = false;
  };

  explicit DiskLog(DiskLogOptions options);

  Status Recover();
  Status DeleteCommittedSegments();
  std::string SegmentPath(uint64_t base) const;
  void WriterLoop(std::stop_token stop);
  void WriteGroup(std::vector<Pending>& group);
  Status SyncData(const std::shared_ptr<Segment>& seg);
  Status Roll(uint64_t base, std::vector<Touched>& touched);
  Status RollBack(const std::vector<Touched>& touched);
  void FailInline(AppendCallback& done, Status status, metrics::Counter& counter);

  const DiskLogOptions options_;
  const std::shared_ptr<LogFileSystem> fs_;
  std::unique_ptr<DirLock> lock_;

  metrics::Histogram& fsync_seconds_;
  metrics::Counter& fsyncs_total_;
  metrics::Counter& appended_records_;
  metrics::Counter& errors_full_;
  metrics::Counter& errors_io_;
  metrics::Counter& errors_closed_;
  std::atomic<uint64_t> fsync_count_{0};

  // Writer-thread state (touched by Open before the thread starts, then only by the writer).
  std::shared_ptr<Segment> active_;  // the segment being appended to (the last one)
  uint64_t active_bytes_ = 0;        // bytes written to active_, durable or not
  uint64_t write_next_ = 0;          // offset the next written record gets

  std::mutex close_mu_;   // serialises Close
  std::mutex commit_mu_;  // serialises Commit (file deletion and committed.offset)
  mutable std::mutex mu_;
  std::condition_variable_any writer_cv_;  // pending_ became non-empty
  std::condition_variable durable_cv_;     // visible_next_ advanced, or closing_
  // State below is protected by mu_.
  std::vector<Pending> pending_;                           // accepted, not yet taken by the writer
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;  // by base offset; last is active
  uint64_t visible_next_ = 0;  // records below this are durable and readable
  uint64_t committed_ = 0;
  uint64_t used_bytes_ = 0;  // bytes of segment files + accepted, unwritten appends
  bool closing_ = false;     // Close has begun: appends are refused
  bool closed_ = false;      // Close has finished: files are released
  Status failed_;            // non-OK in the failed state
  Cursor cursor_;            // where the last Read stopped

  std::jthread writer_;  // last member: stopped (by Close) before the rest is destroyed
};

}  // namespace sluice::buffer
