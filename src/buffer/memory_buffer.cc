#include "buffer/memory_buffer.h"

#include <utility>

namespace sluice::buffer {

MemoryBuffer::MemoryBuffer(uint64_t max_bytes) : max_bytes_(max_bytes) {}

MemoryBuffer::~MemoryBuffer() { Close(); }

void MemoryBuffer::Append(std::vector<std::string> records, AppendCallback done) {
  uint64_t bytes = 0;
  for (const std::string& r : records) bytes += r.size() + kRecordOverheadBytes;
  Status status;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      status = Status::Unavailable("buffer is closed");
    } else if (used_bytes_ + bytes > max_bytes_) {
      status = Status::ResourceExhausted("memory buffer is full: " + std::to_string(used_bytes_) +
                                         " of " + std::to_string(max_bytes_) +
                                         " bytes used, this append needs " + std::to_string(bytes));
    } else {
      used_bytes_ += bytes;
      for (std::string& r : records) records_.push_back(std::move(r));
    }
  }
  if (status.ok()) appended_cv_.notify_all();
  done(std::move(status));
}

Result<std::vector<Record>> MemoryBuffer::Read(uint64_t from, size_t max_records, size_t max_bytes,
                                               std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  auto next = [&] { return first_offset_ + records_.size(); };
  if (closed_) return Status::Unavailable("buffer is closed");
  if (from < first_offset_) {
    return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                   " below the oldest retained record " +
                                   std::to_string(first_offset_));
  }
  if (from > next()) {
    return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                   " beyond the next offset " + std::to_string(next()));
  }
  std::vector<Record> out;
  if (max_records == 0) return out;
  appended_cv_.wait_for(lock, wait, [&] { return closed_ || next() > from; });
  if (closed_) return Status::Unavailable("buffer is closed");
  // Commit may have run while we waited.
  if (from < first_offset_) return Status::InvalidArgument("records were committed during Read");
  size_t bytes = 0;
  for (uint64_t off = from; off < next() && out.size() < max_records; ++off) {
    const std::string& payload = records_[off - first_offset_];
    if (!out.empty() && bytes + payload.size() > max_bytes) break;
    bytes += payload.size();
    out.push_back(Record{off, payload});
  }
  return out;
}

Status MemoryBuffer::Commit(uint64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_) return Status::Unavailable("buffer is closed");
  uint64_t next = first_offset_ + records_.size();
  if (offset > next) {
    return Status::InvalidArgument("commit offset " + std::to_string(offset) +
                                   " is beyond the next offset " + std::to_string(next));
  }
  while (first_offset_ < offset) {
    used_bytes_ -= records_.front().size() + kRecordOverheadBytes;
    records_.pop_front();
    ++first_offset_;
  }
  return Status::OK();
}

BufferStats MemoryBuffer::Stats() const {
  std::lock_guard lock(mu_);
  BufferStats s;
  s.next_offset = first_offset_ + records_.size();
  s.committed_offset = first_offset_;
  s.depth_records = records_.size();
  s.depth_bytes = used_bytes_;
  s.used_bytes = used_bytes_;
  s.capacity_bytes = max_bytes_;
  return s;
}

void MemoryBuffer::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  appended_cv_.notify_all();
}

}  // namespace sluice::buffer
