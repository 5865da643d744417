// ShardRouter: spreads ingest's appends over the buffer shards.
//
// A buffer may have several shards (independent Buffers, each with its own offsets, consumed
// by its own loader), so that several loaders can commit to the hot store in parallel. Each
// Append goes whole to ONE shard — a request's events stay one durable unit — chosen
// round-robin. A shard that refuses an append (full, failing) is not retried on another: the
// caller gets that shard's answer, as with a single buffer — unless a spill buffer is set:
// then an append the shard refuses with Unavailable or ResourceExhausted (Redis down or at
// maxmemory) goes whole to the spill buffer instead, and the caller gets the spill's answer.
// The records are copied before the first attempt when a spill is set (the shard consumes
// them).
//
// Concurrency: thread-safe; borrows the shards, which must outlive it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "buffer/buffer.h"

namespace sluice::buffer {

class ShardRouter {
 public:
  // `shards` must not be empty.
  explicit ShardRouter(std::vector<Buffer*> shards, Buffer* spill = nullptr);

  // Buffer::Append on the next shard in turn.
  void Append(std::vector<std::string> records, AppendCallback done);

  // The shards' depths, bytes and caps summed (next_offset/committed_offset are per shard
  // and reported as 0 here).
  BufferStats Stats() const;

  size_t size() const { return shards_.size(); }
  bool spills() const { return spill_ != nullptr; }
  // Appends (and records) that went to the spill buffer since start.
  uint64_t spilled_appends() const { return spilled_appends_.load(); }
  uint64_t spilled_records() const { return spilled_records_.load(); }

 private:
  const std::vector<Buffer*> shards_;
  Buffer* const spill_;
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> spilled_appends_{0};
  std::atomic<uint64_t> spilled_records_{0};
};

}  // namespace sluice::buffer
