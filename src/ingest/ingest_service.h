// IngestService: the /v1/* ingest endpoints (DESIGN.md "HTTP").
//
// For each request: authenticate (Authorization header, or "writeKey" in the body), parse and
// validate (event/parser.h), take one rate-limit token per event, append the valid events and
// the quarantine records of the invalid ones to the Buffer as one unit, and answer only when
// the Buffer says they are durable:
//   200 {"success":true,"accepted":N[,"rejected":[{"index":i,"error":"…"}]]}
//   400 body not JSON, or no valid event in it (rejected ones are still quarantined)
//   401 no or unknown write key;  413/415 from the HTTP layer;  429 over the key's rate
//   503 with Retry-After when the buffer is full or its write failed: nothing acknowledged.
// Never 200 for an event that is not durable.
//
// Concurrency: handlers run on HTTP I/O threads and never block; the response is sent from the
// buffer's callback. The service must outlive the server's Stop().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "buffer/shard_router.h"
#include "common/clock.h"
#include "event/parser.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/server.h"

namespace sluice::ingest {

struct IngestOptions {
  event::ParseOptions parse;
  // Registers POST /v1/noop, which reads the body and answers 200 without parsing or storing:
  // the HTTP ceiling that `sluice bench --endpoint noop` measures against.
  bool noop_route = false;
  // How much of a body that is not JSON to keep in the quarantine.
  size_t max_quarantined_body_bytes = 64 * 1024;
};

// One rejected event (or unusable body), as the dashboard lists the latest ones.
struct RecentRejection {
  int64_t received_at_us = 0;
  std::string source;  // the write key's name; "" without keys
  std::string reason;  // the short code of sluice_events_rejected_total{reason}
  std::string error;   // the sentence sent to the client, cut to kMaxRecentErrorBytes
};

// The POST paths RegisterRoutes serves (without /v1/noop): the routes whose
// sluice_http_request_duration_seconds is the acknowledgement latency.
std::vector<std::string> IngestPaths();

class IngestService {
 public:
  static constexpr size_t kRecentRejections = 20;
  static constexpr size_t kMaxRecentErrorBytes = 300;

  // `buffer` (the buffer's shards), `keys` and `limiter` are borrowed and must outlive this
  // service.
  IngestService(IngestOptions options, buffer::ShardRouter* buffer, const http::KeyStore* keys,
                http::RateLimiter* limiter, Clock* clock = SystemClock());

  void RegisterRoutes(http::Server* server);

  // The last kRecentRejections rejections this process quarantined, newest first (the
  // quarantine itself is the events_rejected table). Thread-safe.
  std::vector<RecentRejection> RecentRejections() const;

 private:
  void Handle(event::Endpoint endpoint, http::Request& req, http::Responder done);
  void Remember(int64_t received_at_us, const std::string& source, const std::string& reason,
                const std::string& error);

  IngestOptions options_;
  buffer::ShardRouter* buffer_;
  const http::KeyStore* keys_;
  http::RateLimiter* limiter_;
  Clock* clock_;

  mutable std::mutex recent_mu_;
  // State below is protected by recent_mu_.
  std::deque<RecentRejection> recent_;  // newest first, at most kRecentRejections
};

}  // namespace sluice::ingest
