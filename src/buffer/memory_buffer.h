// MemoryBuffer: the Buffer contract held in process memory (the seed's in-memory queue).
//
// For unit tests and `--buffer memory`. An OK callback promises only that the records are in
// memory: everything not yet committed is lost when the process stops. Offsets start at 0 for
// every new MemoryBuffer.
//
// Guarantees: the same as buffer.h, with "durable" meaning "in memory". Append's callback runs
// inline, before Append returns, with OK (or the refusal). Commit frees the committed records
// at once, so Read below the committed offset is InvalidArgument.
//
// Capacity: each record counts its payload plus kRecordOverheadBytes (the framing DiskLog
// stores), so a cap means about the same for both buffers.
//
// Concurrency: thread-safe; every method takes one mutex. Read waits on a condition variable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "buffer/buffer.h"

namespace sluice::buffer {

class MemoryBuffer final : public Buffer {
 public:
  // Bytes each record counts against the cap besides its payload.
  static constexpr uint64_t kRecordOverheadBytes = 8;

  explicit MemoryBuffer(uint64_t max_bytes);
  ~MemoryBuffer() override;
  MemoryBuffer(const MemoryBuffer&) = delete;
  MemoryBuffer& operator=(const MemoryBuffer&) = delete;

  void Append(std::vector<std::string> records, AppendCallback done) override;
  Result<std::vector<Record>> Read(uint64_t from, size_t max_records, size_t max_bytes,
                                   std::chrono::milliseconds wait) override;
  // InvalidArgument when `offset` is beyond next_offset; a lower offset than the committed one
  // is ignored; Unavailable after Close.
  Status Commit(uint64_t offset) override;
  BufferStats Stats() const override;
  void Close() override;

 private:
  const uint64_t max_bytes_;

  mutable std::mutex mu_;
  std::condition_variable appended_cv_;  // signalled on append and on Close
  // State below is protected by mu_.
  std::deque<std::string> records_;  // records_[i] has offset first_offset_ + i
  uint64_t first_offset_ = 0;        // == committed offset: committed records are freed
  uint64_t used_bytes_ = 0;
  bool closed_ = false;
};

}  // namespace sluice::buffer
