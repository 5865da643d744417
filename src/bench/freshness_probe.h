// FreshnessProbe: measures how long an acknowledged event takes to become visible to SQL.
//
// Every `interval`, it sends one probe event (POST /v1/track with a unique messageId,
// "<id_prefix>-probe-<n>"), and
// once it is acknowledged polls POST /v1/query for that event_id every 20 ms; the time from
// the acknowledgement to the first answer that finds it is one freshness sample. A probe not
// visible within `timeout` counts as timed out. One probe is in flight at a time, so the
// probe adds about one event and up to 50 small queries a second to the load.
//
// The query reads only `received_at >= <the probe's send time> - lookback_s`, as a dashboard
// of recent events would: without that bound every poll scans all of `events` (on PostgreSQL
// a parallel sequential scan of every partition), and the probe, not the pipeline, would set
// the store's CPU cost. So the client's clock must not be ahead of the server's by more than
// lookback_s (they are the same clock on one machine).
//
// Concurrency: Start() runs the loop on its own thread; Stop() ends and joins it; Summary()
// after Stop().
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "bench/histogram.h"

namespace sluice::bench {

struct FreshnessOptions {
  std::string url;  // http://host:port (a path prefix is not supported)
  double interval_s = 0.1;
  double timeout_s = 10;
  std::string write_key;  // HTTP Basic user name for /v1/track, when set
  std::string read_key;   // Bearer token for /v1/query, when set
  // Probe ids are "<id_prefix>-probe-<n>": unique per run, and never a "<id_prefix>-<seq>" of
  // the run's events.
  std::string id_prefix = "bench";
  // The /v1/query engine the probes ask: "duckdb" (hot rows + Parquet with the embedded store)
  // or "postgres" (the PostgreSQL hot store, on its replica).
  std::string engine = "duckdb";
  // The probe's query reads events received at most this long before the probe was sent.
  double lookback_s = 2;
};

struct FreshnessSummary {
  uint64_t probes = 0;   // acknowledged probes
  uint64_t visible = 0;  // of those, seen by a query in time
  uint64_t timed_out = 0;
  uint64_t errors = 0;  // probe sends or queries that failed
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

class FreshnessProbe {
 public:
  explicit FreshnessProbe(FreshnessOptions options) : options_(std::move(options)) {}
  ~FreshnessProbe() { Stop(); }
  void Start();
  void Stop();
  FreshnessSummary Summary() const;

 private:
  void Run(std::stop_token stop);

  FreshnessOptions options_;
  std::jthread thread_;
  LatencyHistogram histogram_;  // written by the thread, read after Stop()
  FreshnessSummary counts_;
};

}  // namespace sluice::bench
