#include "buffer/shard_router.h"

#include <cassert>

namespace sluice::buffer {

ShardRouter::ShardRouter(std::vector<Buffer*> shards) : shards_(std::move(shards)) {
  assert(!shards_.empty());
}

void ShardRouter::Append(std::vector<std::string> records, AppendCallback done) {
  const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed) % shards_.size();
  shards_[i]->Append(std::move(records), std::move(done));
}

BufferStats ShardRouter::Stats() const {
  BufferStats total;
  for (const Buffer* b : shards_) {
    BufferStats s = b->Stats();
    total.depth_records += s.depth_records;
    total.depth_bytes += s.depth_bytes;
    total.used_bytes += s.used_bytes;
    total.capacity_bytes += s.capacity_bytes;
  }
  return total;
}

}  // namespace sluice::buffer
