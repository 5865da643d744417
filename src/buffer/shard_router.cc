#include "buffer/shard_router.h"

#include <cassert>
#include <memory>

#include "common/metrics.h"

namespace sluice::buffer {

ShardRouter::ShardRouter(std::vector<Buffer*> shards, Buffer* spill)
    : shards_(std::move(shards)), spill_(spill) {
  assert(!shards_.empty());
}

void ShardRouter::Append(std::vector<std::string> records, AppendCallback done) {
  const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed) % shards_.size();
  if (spill_ == nullptr) return shards_[i]->Append(std::move(records), std::move(done));
  auto copy = std::make_shared<std::vector<std::string>>(records);
  shards_[i]->Append(std::move(records), [this, copy, done = std::move(done)](Status st) mutable {
    if (st.code() != StatusCode::kUnavailable && st.code() != StatusCode::kResourceExhausted) {
      return done(std::move(st));
    }
    spilled_appends_.fetch_add(1);
    spilled_records_.fetch_add(copy->size());
    static metrics::Counter& spilled = metrics::Default().GetCounter(
        "sluice_buffer_spilled_records_total",
        "Records written to the local spill log because the buffer shard refused them");
    spilled.Inc(copy->size());
    spill_->Append(std::move(*copy), std::move(done));
  });
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
