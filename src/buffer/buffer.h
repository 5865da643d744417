// Buffer: the durable queue between ingest and the loader.
//
// Ingest appends encoded records (event/event.h) and acknowledges the client only when the
// append's callback reports OK, which promises the records are durable for this
// implementation (DiskLog: written and fsynced; MemoryBuffer: in memory only). The loader
// reads records by offset and commits the offset it has stored; storage that holds only
// committed records may then be freed.
//
// Offsets: every record gets the next offset of one dense sequence starting at 0 for a new
// buffer, preserved across restarts. Commit(n) means every record with offset < n is
// consumed.
//
// Concurrency: implementations are thread-safe. Append may be called from many threads at
// once; its callback runs on a buffer-owned thread (or inline, before Append returns, when the
// append is refused at once), so it must be short and must not call back into Append.
// Read/Commit are meant for one loader at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::buffer {

struct Record {
  uint64_t offset = 0;
  std::string payload;
};

struct BufferStats {
  uint64_t next_offset = 0;       // offset the next appended record will get
  uint64_t committed_offset = 0;  // every record below this is consumed
  uint64_t depth_records = 0;     // next_offset - committed_offset
  uint64_t depth_bytes = 0;       // bytes held for records not yet committed (approximate)
  uint64_t used_bytes = 0;        // bytes counted against capacity_bytes
  uint64_t capacity_bytes = 0;    // the cap; appends that would pass it are refused
};

using AppendCallback = std::function<void(Status)>;

class Buffer {
 public:
  virtual ~Buffer() = default;

  // Appends `records` in order, as one unit: either all become durable or none is
  // acknowledged. `done` is called exactly once:
  //   OK                 every record is durable;
  //   ResourceExhausted  the byte cap would be passed: nothing of this call is stored;
  //   IOError            the write or fsync failed: the records must be treated as not stored;
  //   Unavailable        the buffer is closed.
  virtual void Append(std::vector<std::string> records, AppendCallback done) = 0;

  // Returns up to `max_records` records (and about `max_bytes`, but always at least one if
  // any is available) with offsets >= `from`, in offset order. Waits up to `wait` for the
  // first record when none is available, then returns an empty vector. Records are visible
  // to Read only once durable. Corruption when a stored record fails its checksum;
  // InvalidArgument when `from` is below the oldest retained record or beyond next_offset.
  virtual Result<std::vector<Record>> Read(uint64_t from, size_t max_records, size_t max_bytes,
                                           std::chrono::milliseconds wait) = 0;

  // Marks every record with offset < `offset` consumed. Offsets never move backwards (a
  // lower value is ignored). May free storage.
  virtual Status Commit(uint64_t offset) = 0;

  virtual BufferStats Stats() const = 0;

  // The store holds records up to `offset` (exclusive) that this buffer no longer has — it
  // lost them, as a Redis restarted from an older AOF does. Makes the next appended record's
  // offset at least `offset`, so offsets are never reused. FailedPrecondition for buffers that
  // cannot lose acknowledged records (their offsets beyond next_offset are a wrong data dir).
  virtual Status AdvanceTo(uint64_t offset) {
    return Status::FailedPrecondition(
        "the hot store holds buffer offsets up to " + std::to_string(offset) +
        " but the buffer ends before them: this buffer does not belong to this hot store");
  }

  // "" while appends can be expected to succeed; otherwise why they fail now (e.g. the Redis
  // server is unreachable), for /readyz. Buffers without a remote side are always "".
  virtual std::string LastError() const { return ""; }

  // Stops accepting appends (later ones get Unavailable), completes those already accepted
  // (their callbacks run), wakes any waiting Read, and releases files. Idempotent.
  virtual void Close() = 0;
};

}  // namespace sluice::buffer
