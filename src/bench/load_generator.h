// The `sluice bench` load generator: HTTP/1.1 clients that post generated events to a running
// sluice server and report what came back.
//
// Model: `connections` keep-alive connections spread over `threads` event-loop threads, each
// with one request in flight (no pipelining). Closed loop (rate 0): a connection sends its next
// request as soon as the previous answer arrives. Open loop (rate > 0): each connection owns a
// fixed schedule of send slots, rate/batch/connections per second, staggered across
// connections; a request's latency runs from its scheduled slot, not from when it was actually
// written, so a stalled server shows up in the latency instead of silently lowering the load
// (no coordinated omission).
//
// Run phases: connect, then `warmup_s` (requests sent, not counted), then `duration_s` of
// measurement. No request starts after the end; requests in flight at the end get up to
// drain_timeout_s to be answered, then count as timed out. Counts are by the request's start
// (its slot in open loop), so every counted request was answered or failed within the report.
//
// Stopping early: a stop request (RunBench's stop_token; `sluice bench` makes one from SIGINT
// and SIGTERM) ends the measurement at that moment, as if the duration had ended then: no
// request starts after it, connections waiting for a slot or a reconnect finish at once, and
// requests in flight get up to drain_timeout_s to be answered; those still unanswered then are
// cut off and counted as connection errors. The report covers the measurement up to the stop
// (stopped_early, duration_s = the time measured).
//
// Failures: a connection error (refused, reset, timeout, closed) is counted by message and the
// connection reconnects (with a short backoff after a failed connect). 4xx/5xx answers,
// including 429 and 503, are counted by status and are not fatal.
//
// Raw XADD mode: with raw_xadd_url set, RunBench sends the same events straight to Redis
// instead (bench/raw_xadd.h), the physical limit beside which ingest into a Redis buffer is
// measured; the report has the same fields, with raw_xadd set.
//
// Concurrency: RunBench blocks until the run ends and may be called from any thread; it starts
// and joins its own threads. Beast/Asio stay out of this header (the CLI includes it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stop_token>
#include <string>

#include "common/status.h"

namespace sluice::bench {

struct BenchOptions {
  std::string url = "http://127.0.0.1:8080";  // http://host[:port][/path-prefix]
  std::string endpoint = "batch";             // batch | track | events | noop
  int connections = 16;
  int threads = 1;
  int batch = 100;         // events per request; track always sends 1
  double rate = 0;         // target events/s over all connections; 0 = as fast as possible
  double duration_s = 10;  // measured part of the run
  bool gzip = false;       // Content-Encoding: gzip bodies (spliced from precompressed blocks)
  std::string write_key;   // sent as the HTTP Basic user name when set
  size_t event_bytes = 2048;
  // Distinct event templates (properties, context) the events are drawn from; more makes the
  // data less repetitive (and compress less) at ~event_bytes of memory each. 0: automatic, up
  // to 1024 within 64 MiB.
  size_t templates = 0;
  uint64_t seed = 1;    // event contents depend only on this
  double warmup_s = 0;  // sent before the measurement, not counted
  // Freshness probes (bench/freshness_probe.h): one every probe_interval_s during the
  // measurement; 0 = off. read_key authorises their queries when the server has keys.
  double probe_interval_s = 0;
  std::string read_key;
  // Raw XADD mode (bench/raw_xadd.h) when raw_xadd_url is set: redis://[[user]:password@]host
  // [:port][/db]. url, threads, write_key do not apply; gzip, probes and endpoints other than
  // batch are refused.
  std::string raw_xadd_url;
  std::string raw_xadd_stream = "sluice:bench-raw";
  bool raw_xadd_keep = false;  // leave the stream after the run (default: DEL it)
  // Not CLI flags; tests and tools set them.
  uint64_t run_id = 0;           // messageId prefix; 0 = random per run
  double drain_timeout_s = 10;   // how long in-flight requests may finish after the end
  double connect_timeout_s = 5;  // for the reachability check before the run
};

// Latency in milliseconds over the measured requests that got an HTTP answer (any status).
struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};

struct BenchReport {
  // What ran.
  std::string url;
  std::string endpoint;
  std::string method_and_path;  // "POST /v1/batch"
  int connections = 0;
  int threads = 0;
  int batch = 0;           // effective (1 for track)
  double target_rate = 0;  // events/s; 0 = closed loop
  bool open_loop = false;
  bool gzip = false;
  bool unique_ids = true;  // every event of the run carried a distinct messageId
  uint64_t run_id = 0;
  uint64_t seed = 0;
  double mean_event_bytes = 0;  // mean JSON size of one generated event
  double warmup_s = 0;
  double duration_s = 0;          // measured time: planned_duration_s, or less when stopped early
  double planned_duration_s = 0;  // --duration
  bool stopped_early = false;     // a stop request ended the run before planned_duration_s
  double elapsed_s = 0;           // measurement start to the last counted answer (>= duration_s)

  // What happened, over measured requests only.
  uint64_t requests_sent = 0;      // a write was started
  uint64_t requests_answered = 0;  // got an HTTP response (any status)
  uint64_t requests_missed = 0;    // open loop: slots before the end that never got sent
  uint64_t events_sent = 0;
  uint64_t events_acked = 0;      // in 2xx responses with "success":true ("accepted" if given)
  uint64_t events_rejected = 0;   // in such responses but not accepted
  uint64_t acked_json_bytes = 0;  // uncompressed JSON bytes of acked events
  uint64_t body_bytes_sent = 0;   // request body bytes on the wire (compressed if gzip)
  std::map<int, uint64_t> status_counts;              // every HTTP status seen
  std::map<std::string, uint64_t> connection_errors;  // "read: end of stream" -> count
  uint64_t connects = 0;                              // connections opened, including reconnects
  // Raw XADD mode: error replies by message ("XADD: OOM command not allowed…") -> commands.
  std::map<std::string, uint64_t> reply_errors;
  LatencySummary latency;
  // Freshness probes, when enabled: acknowledgement to visibility in /v1/query.
  bool probed = false;
  uint64_t probes = 0, probes_visible = 0, probes_timed_out = 0, probe_errors = 0;
  double freshness_p50_ms = 0, freshness_p99_ms = 0, freshness_max_ms = 0;

  // Raw XADD mode only (status_counts stays empty; a request is one batch's round trip and an
  // event is acked when its XADD is answered with an entry ID).
  bool raw_xadd = false;
  std::string stream;           // the stream key
  uint64_t stream_entries = 0;  // XLEN after the run, before the DEL
  bool stream_deleted = false;  // DEL after the run succeeded
  std::string stream_error;     // why XLEN or DEL failed; empty when they worked

  // Derived rates (over elapsed_s).
  double requests_per_s = 0;
  double events_per_s = 0;          // acked
  double offered_events_per_s = 0;  // sent
  double mb_per_s = 0;              // acked JSON, 10^6 bytes/s
  // Open loop only: every scheduled request was sent and >= 99% of scheduled events acked.
  bool rate_target_met = false;
};

// InvalidArgument, with a sentence naming the flag, unless the options can run.
Status ValidateBenchOptions(const BenchOptions& options);

// Runs the benchmark. InvalidArgument for bad options (with a sentence naming the flag);
// Unavailable when the server cannot be reached at all before the run. Otherwise the report,
// whatever the HTTP statuses were, also when `stop` ends the run early (see above; a stop
// during the warmup gives a report of nothing measured).
Result<BenchReport> RunBench(const BenchOptions& options, std::stop_token stop = {});

enum class ReportFormat { kText, kJson };
// "text" or "json"; InvalidArgument otherwise.
Result<ReportFormat> ParseReportFormat(const std::string& name);

// Text: a human summary. JSON: one object with machine-readable keys (events_per_s, p50_ms,
// p99_ms, p999_ms, errors {status: count}, connection_errors {message: count}, …).
std::string FormatReport(const BenchReport& report, ReportFormat format);

}  // namespace sluice::bench
