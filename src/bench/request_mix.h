// RequestMix: what each request of a `sluice bench --mix seed` run looks like, and
// RequestSequencer: which events (seqs) each request of a run carries.
//
// The seed mix models the traffic of a site with browser and server-side senders:
//   60%  browser-like single events, POST /v1/track (1 track event);
//   25%  browser-SDK batches,        POST /v1/batch of 5..20 events (uniform);
//   15%  server-side batches,        POST /v1/batch of 100..500 events (uniform).
// A request is 48.7 events on average (MeanEvents()), so 12,000 events/s is ~246 requests/s.
// The fixed mix is the classic `--endpoint E --batch N`: every request the same.
//
// Guarantees: Draw(k) depends only on the seed and k (a hash, no state), so the k-th request of
// a run has the same shape in every run with that seed, whatever the threads do. The sequencer
// hands out requests in order: request k carries seqs first_seq .. first_seq + events - 1, the
// first_seq of request k+1 is the next seq, and so the ids of one request are consecutive and
// no two requests share a seq.
//
// Concurrency: RequestMix is immutable and may be shared; RequestSequencer is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>

namespace sluice::bench {

enum class RequestKind {
  kFixed,         // --mix fixed: --endpoint and --batch
  kTrack,         // seed: one event to /v1/track
  kBrowserBatch,  // seed: 5..20 events to /v1/batch
  kServerBatch,   // seed: 100..500 events to /v1/batch
};
inline constexpr std::array<RequestKind, 3> kSeedKinds = {
    RequestKind::kTrack, RequestKind::kBrowserBatch, RequestKind::kServerBatch};

// The report's name of a kind: "track", "browser_batch", "server_batch"; kFixed has none
// (the report names it by its endpoint).
std::string_view RequestKindName(RequestKind kind);

struct RequestShape {
  RequestKind kind = RequestKind::kFixed;
  int events = 1;
};

class RequestMix {
 public:
  // Shares of the seed mix, in percent, and its batch size ranges (inclusive).
  static constexpr int kTrackPercent = 60, kBrowserBatchPercent = 25, kServerBatchPercent = 15;
  static constexpr int kBrowserBatchMin = 5, kBrowserBatchMax = 20;
  static constexpr int kServerBatchMin = 100, kServerBatchMax = 500;

  // The seed mix.
  static RequestMix Seed(uint64_t seed) { return RequestMix(seed, 0); }
  // Every request kFixed with `batch` events.
  static RequestMix Fixed(int batch) { return RequestMix(0, batch); }

  bool IsSeed() const { return fixed_batch_ == 0; }
  // The shape of request `k` (0-based, in send order).
  RequestShape Draw(uint64_t k) const;
  // The expected events per request.
  double MeanEvents() const;

 private:
  RequestMix(uint64_t seed, int fixed_batch) : seed_(seed), fixed_batch_(fixed_batch) {}

  uint64_t seed_;
  int fixed_batch_;  // 0: the seed mix
};

class RequestSequencer {
 public:
  explicit RequestSequencer(const RequestMix& mix) : mix_(mix) {}

  struct Next {
    uint64_t index = 0;      // the request's k
    uint64_t first_seq = 0;  // seq of its first event
    RequestShape shape;
  };
  // The next request of the run.
  Next Take();

 private:
  const RequestMix mix_;
  std::mutex mu_;
  // State below is protected by mu_.
  uint64_t next_index_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace sluice::bench
