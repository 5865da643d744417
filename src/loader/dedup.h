// DedupSet: remembers which event_ids were stored recently, to drop client retries (the same
// messageId sent again) within a window of received_at.
//
// Memory-bounded: it keeps 128-bit XXH3 fingerprints, not the ids (a false "seen" needs a
// 128-bit collision), with their received_at in arrival order; entries older than `window`
// behind the newest received_at are forgotten, and so are the oldest once there are more than
// `max_ids`. About 50 bytes per id.
//
// Concurrency: not thread-safe; the loader's thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <unordered_set>

namespace sluice::loader {

struct Fingerprint {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Fingerprint&) const = default;
};

Fingerprint FingerprintOf(std::string_view event_id);

class DedupSet {
 public:
  DedupSet(int64_t window_us, size_t max_ids) : window_us_(window_us), max_ids_(max_ids) {}

  bool Contains(const Fingerprint& fp) const { return set_.count(fp) != 0; }
  // Remembers `fp` as stored at `received_at_us`, then forgets what the bounds say to.
  void Insert(const Fingerprint& fp, int64_t received_at_us);
  // Forgets everything (before a rebuild from the store).
  void Clear() {
    set_.clear();
    order_.clear();
    newest_us_ = 0;
  }
  size_t size() const { return set_.size(); }

 private:
  struct Hash {
    size_t operator()(const Fingerprint& f) const { return static_cast<size_t>(f.lo); }
  };
  struct Entry {
    Fingerprint fp;
    int64_t received_at_us;
  };
  void Expire();

  const int64_t window_us_;
  const size_t max_ids_;
  int64_t newest_us_ = 0;
  std::unordered_set<Fingerprint, Hash> set_;
  std::deque<Entry> order_;  // insertion order; received_at is nearly sorted
};

}  // namespace sluice::loader
