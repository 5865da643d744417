#include "ingest/ingest_service.h"

#include <cmath>
#include <memory>

#include "common/json_writer.h"
#include "common/metrics.h"

namespace sluice::ingest {
namespace {

struct Route {
  const char* path;
  event::Endpoint endpoint;
};
constexpr Route kRoutes[] = {
    {"/v1/track", event::Endpoint::kTrack},   {"/v1/identify", event::Endpoint::kIdentify},
    {"/v1/page", event::Endpoint::kPage},     {"/v1/screen", event::Endpoint::kScreen},
    {"/v1/group", event::Endpoint::kGroup},   {"/v1/alias", event::Endpoint::kAlias},
    {"/v1/batch", event::Endpoint::kBatch},   {"/v1/import", event::Endpoint::kBatch},
    {"/v1/events", event::Endpoint::kEvents},
};

struct IngestMetrics {
  metrics::Counter& accepted = metrics::Default().GetCounter(
      "sluice_events_accepted_total", "Events acknowledged durable in the buffer");
  metrics::Counter& quarantined = metrics::Default().GetCounter(
      "sluice_events_quarantined_total", "Rejected events (or bodies) written to the quarantine");
  static metrics::Counter& Refused(const char* reason) {
    return metrics::Default().GetCounter("sluice_ingest_refused_events_total",
                                         "Valid events refused (not acknowledged) by reason",
                                         {{"reason", reason}});
  }
  metrics::Counter& refused_full = Refused("buffer_full");
  metrics::Counter& refused_io = Refused("buffer_error");
  metrics::Counter& refused_rate = Refused("rate_limited");
  metrics::Counter& refused_auth = Refused("unauthenticated");

  void Rejected(const std::string& reason) {
    metrics::Default()
        .GetCounter("sluice_events_rejected_total", "Events rejected by validation, by reason",
                    {{"reason", reason}})
        .Inc();
  }
};

IngestMetrics& Metrics() {
  static IngestMetrics* m = new IngestMetrics();
  return *m;
}

const char* kMissingKey =
    "missing write key: send it as the HTTP Basic user name, as 'Authorization: Bearer KEY', "
    "or as \"writeKey\" in the body";

void AppendRejected(JsonWriter& w, const std::vector<event::RejectedEvent>& rejected) {
  if (rejected.empty()) return;
  w.Key("rejected").BeginArray();
  for (const auto& r : rejected) {
    w.BeginObject().Key("index").Uint(r.index).Key("error").String(r.error).EndObject();
  }
  w.EndArray();
}

}  // namespace

IngestService::IngestService(IngestOptions options, buffer::ShardRouter* buffer,
                             const http::KeyStore* keys, http::RateLimiter* limiter, Clock* clock)
    : options_(std::move(options)), buffer_(buffer), keys_(keys), limiter_(limiter), clock_(clock) {}

void IngestService::RegisterRoutes(http::Server* server) {
  for (const auto& r : kRoutes) {
    server->Route("POST", r.path, [this, ep = r.endpoint](http::Request& req, http::Responder done) {
      Handle(ep, req, std::move(done));
    });
  }
  if (options_.noop_route) {
    server->Route("POST", "/v1/noop", [](http::Request&, http::Responder done) {
      done(http::Response::Json(200, "{\"success\":true}"));
    });
  }
}

std::vector<std::string> IngestPaths() {
  std::vector<std::string> paths;
  for (const auto& r : kRoutes) paths.emplace_back(r.path);
  return paths;
}

std::vector<RecentRejection> IngestService::RecentRejections() const {
  std::lock_guard lock(recent_mu_);
  return {recent_.begin(), recent_.end()};
}

void IngestService::Remember(int64_t received_at_us, const std::string& source,
                             const std::string& reason, const std::string& error) {
  RecentRejection r{received_at_us, source, reason, error.substr(0, kMaxRecentErrorBytes)};
  std::lock_guard lock(recent_mu_);
  recent_.push_front(std::move(r));
  if (recent_.size() > kRecentRejections) recent_.pop_back();
}

void IngestService::Handle(event::Endpoint endpoint, http::Request& req, http::Responder done) {
  auto& m = Metrics();
  int64_t received_at = req.received_at_us != 0 ? req.received_at_us : clock_->NowMicros();

  // 1. A key in the header is checked before the body is parsed.
  const http::Key* key = nullptr;
  std::optional<std::string> header_secret = CredentialFromHeader(req);
  if (!keys_->empty() && header_secret) {
    key = keys_->Find(*header_secret);
    if (key == nullptr || key->role != http::Role::kWrite) {
      m.refused_auth.Inc();
      return done(http::Response::Error(
          401, key == nullptr ? "unknown write key" : "a read key cannot write events"));
    }
  }

  // 2. Parse and validate.
  event::ParseOutput out;
  Status parsed = event::Parse(endpoint, req.body, received_at, options_.parse, &out);

  // 3. Without a header key, the body's writeKey must name one.
  if (!keys_->empty() && key == nullptr) {
    if (!parsed.ok() || out.write_key.empty()) {
      m.refused_auth.Inc();
      return done(http::Response::Error(
          parsed.ok() ? 401 : 400, parsed.ok() ? kMissingKey : parsed.message()));
    }
    key = keys_->Find(out.write_key);
    if (key == nullptr || key->role != http::Role::kWrite) {
      m.refused_auth.Inc();
      return done(http::Response::Error(
          401, key == nullptr ? "unknown write key" : "a read key cannot write events"));
    }
  }
  const std::string source = key ? key->name : std::string();

  std::vector<std::string> records;
  if (!parsed.ok()) {
    // The body as a whole is unusable: quarantine it and say why.
    event::Rejection rej{received_at, source, parsed.message(),
                         req.body.substr(0, options_.max_quarantined_body_bytes)};
    records.push_back(event::EncodeRecord(rej));
    m.Rejected("bad_body");
    m.quarantined.Inc();
    Remember(received_at, source, "bad_body", parsed.message());
    std::string message = parsed.message();
    buffer_->Append(std::move(records), [done = std::move(done), message](Status) {
      done(http::Response::Error(400, message));
    });
    return;
  }

  // 4. Rate limit in events.
  size_t n_events = out.events.size() + out.rejected.size();
  double retry_after = 0;
  if (limiter_->enabled() &&
      !limiter_->TryTake(source, static_cast<double>(n_events), &retry_after)) {
    m.refused_rate.Inc(out.events.size());
    http::Response r = http::Response::Error(
        429, "over the rate limit of write key \"" + source + "\"; retry later");
    r.headers.emplace_back("Retry-After",
                           std::to_string(static_cast<int64_t>(std::ceil(retry_after))));
    return done(std::move(r));
  }

  // 5. Encode and append as one unit.
  records.reserve(n_events);
  for (auto& e : out.events) {
    e.source = source;
    records.push_back(event::EncodeRecord(e));
  }
  for (const auto& r : out.rejected) {
    records.push_back(event::EncodeRecord(event::Rejection{received_at, source, r.error, r.raw}));
    m.Rejected(r.reason);
    Remember(received_at, source, r.reason, r.error);
  }
  m.quarantined.Inc(out.rejected.size());

  size_t accepted = out.events.size();
  auto rejected = std::make_shared<std::vector<event::RejectedEvent>>(std::move(out.rejected));
  buffer_->Append(std::move(records), [done = std::move(done), accepted, rejected](Status st) {
    auto& mm = Metrics();
    if (!st.ok()) {
      (st.code() == StatusCode::kResourceExhausted ? mm.refused_full : mm.refused_io)
          .Inc(accepted);
      // Unavailable (a Redis that did not answer, or too few replicas) may leave the events
      // stored unacknowledged: a retry is then dropped by the loader's dedup, never doubled.
      std::string msg = st.code() == StatusCode::kResourceExhausted
                            ? "buffer is full; nothing was stored, retry later (" +
                                  st.message() + ")"
                        : st.code() == StatusCode::kUnavailable ||
                                  st.code() == StatusCode::kUnknownOutcome
                            ? "buffer unavailable; the events are not acknowledged, retry "
                              "later (" + st.message() + ")"
                            : "buffer write failed; nothing was stored, retry later (" +
                                  st.message() + ")";
      http::Response r = http::Response::Error(503, msg);
      r.headers.emplace_back("Retry-After", "1");
      return done(std::move(r));
    }
    mm.accepted.Inc(accepted);
    JsonWriter w;
    if (accepted == 0) {
      w.BeginObject().Key("success").Bool(false).Key("error").String("no valid event in body");
      w.Key("accepted").Uint(0);
      AppendRejected(w, *rejected);
      w.EndObject();
      return done(http::Response::Json(400, w.Take()));
    }
    w.BeginObject().Key("success").Bool(true).Key("accepted").Uint(accepted);
    AppendRejected(w, *rejected);
    w.EndObject();
    done(http::Response::Json(200, w.Take()));
  });
}

}  // namespace sluice::ingest
