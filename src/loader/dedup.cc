#include "loader/dedup.h"

#include <xxhash.h>

namespace sluice::loader {

Fingerprint FingerprintOf(std::string_view event_id) {
  XXH128_hash_t h = XXH3_128bits(event_id.data(), event_id.size());
  return Fingerprint{h.low64, h.high64};
}

void DedupSet::Insert(const Fingerprint& fp, int64_t received_at_us) {
  if (!set_.insert(fp).second) return;
  order_.push_back(Entry{fp, received_at_us});
  if (received_at_us > newest_us_) newest_us_ = received_at_us;
  Expire();
}

void DedupSet::Expire() {
  // Entries arrive in nearly increasing received_at; expiring from the front is exact for
  // them and conservative (keeps a little longer) for the rare out-of-order one.
  while (!order_.empty() && (order_.size() > max_ids_ ||
                             order_.front().received_at_us < newest_us_ - window_us_)) {
    set_.erase(order_.front().fp);
    order_.pop_front();
  }
}

}  // namespace sluice::loader
