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
// including 429 and 503, are counted by status and are not fatal. errors_by_status counts every
// measured request that did not end in HTTP 200: by status, "network" when the transport
// failed (reset, closed, refused write), "timeout" when the client cut it (no answer within
// 60 s, or within the drain time after the end). Failed connects are not requests (the slot
// waits for the reconnect) and only appear in connection_errors.
//
// Request mix (`mix`): "fixed" sends every request to `endpoint` with `batch` events. "seed"
// draws each request from RequestMix::Seed(seed) (bench/request_mix.h: 60% single events to
// /v1/track, 25% batches of 5..20 and 15% of 100..500 to /v1/batch; endpoint and batch do not
// apply). In open loop `rate` stays events/s, and the schedule is the run's, not each
// connection's: request k is due at start + (its first seq) / rate, i.e. when the events before
// it have been offered at the rate, and whichever connection is free takes the next request and
// sends it at its slot (latency from the slot). So the offered events, not requests, hold the
// rate whatever the draws, and a request due in the measured time that no connection was free
// to send counts in requests_missed/events_missed.
//
// Ids: every event's messageId is "<id_prefix>-<seq>", seq counting from 0 over the whole run
// (warmup included) in the order requests are taken (bench/request_mix.h RequestSequencer), so
// the events of one request have consecutive seqs. Freshness probes use
// "<id_prefix>-probe-<n>", which no seq id can equal.
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
#include <vector>

#include "bench/run_log.h"
#include "common/status.h"

namespace sluice::bench {

struct BenchOptions {
  std::string url = "http://127.0.0.1:8080";  // http://host[:port][/path-prefix]
  std::string mix = "fixed";                  // fixed | seed (see above)
  std::string endpoint = "batch";             // batch | track | events | noop (mix fixed)
  int connections = 16;
  int threads = 1;
  int batch = 100;         // events per request; track always sends 1 (mix fixed)
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
  std::string probe_engine = "duckdb";  // the probes' /v1/query engine: duckdb | postgres
  double probe_lookback_s = 2;  // the probes' queries read received_at >= send time - this
  // Raw XADD mode (bench/raw_xadd.h) when raw_xadd_url is set: redis://[[user]:password@]host
  // [:port][/db]. url, threads, write_key do not apply; gzip, probes and endpoints other than
  // batch are refused.
  std::string raw_xadd_url;
  std::string raw_xadd_stream = "sluice:bench-raw";
  bool raw_xadd_keep = false;  // leave the stream after the run (default: DEL it)
  // messageIds are "<id_prefix>-<seq>"; [A-Za-z0-9_.:-], at most 64 chars; empty = 8 random
  // hex digits per run.
  std::string id_prefix;
  // Fill BenchReport::acked (every acknowledged request, warmup included) and ::series.
  bool record_acked = false;
  bool record_series = false;
  // Not CLI flags; tests and tools set them.
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
  std::string mix;              // "fixed" or "seed"
  std::string endpoint;         // mix seed: "seed"
  std::string method_and_path;  // "POST /v1/batch"; mix seed: "POST /v1/track + /v1/batch"
  int connections = 0;
  int threads = 0;
  int batch = 0;           // effective (1 for track); mix seed: 0 (see requests_by_kind)
  double target_rate = 0;  // events/s; 0 = closed loop
  bool open_loop = false;
  bool gzip = false;
  bool unique_ids = true;  // every event of the run carried a distinct messageId
  std::string id_prefix;   // every messageId is id_prefix-<seq>
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
  uint64_t events_missed = 0;      // open loop: the events those slots owed
  uint64_t events_sent = 0;        // "events_offered" in the JSON too
  uint64_t events_acked = 0;       // in 2xx responses with "success":true ("accepted" if given)
  uint64_t events_rejected = 0;    // in such responses but not accepted
  uint64_t acked_json_bytes = 0;   // uncompressed JSON bytes of acked events
  uint64_t body_bytes_sent = 0;    // request body bytes on the wire (compressed if gzip)
  std::map<int, uint64_t> status_counts;              // every HTTP status seen
  std::map<std::string, uint64_t> connection_errors;  // "read: end of stream" -> count
  // Requests not answered 200: "503", "network", "timeout" (see above) -> requests.
  std::map<std::string, uint64_t> errors_by_status;
  // Requests sent by kind: mix seed "track", "browser_batch", "server_batch"; mix fixed the
  // endpoint's name.
  std::map<std::string, uint64_t> requests_by_kind;
  uint64_t connects = 0;  // connections opened, including reconnects
  // Raw XADD mode: error replies by message ("XADD: OOM command not allowed…") -> commands.
  std::map<std::string, uint64_t> reply_errors;
  LatencySummary latency;
  // Freshness probes, when enabled: acknowledgement to visibility in /v1/query.
  bool probed = false;
  uint64_t probes = 0, probes_visible = 0, probes_timed_out = 0, probe_errors = 0;
  double freshness_p50_ms = 0, freshness_p99_ms = 0, freshness_max_ms = 0;

  // With options.record_acked: every acknowledged request (bench/run_log.h), unordered.
  std::vector<AckedRange> acked;
  // With options.record_series: one row per second of the measured time (bench/run_log.h).
  std::vector<SeriesRow> series;

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
// p99_ms, p999_ms, latency_ms {p50, p90, p99, p999, max, mean}, errors {status: count},
// errors_by_status {status|"network"|"timeout": requests}, requests_by_kind {kind: requests},
// events_offered, events_acked, id_prefix, connection_errors {message: count}, …).
std::string FormatReport(const BenchReport& report, ReportFormat format);

}  // namespace sluice::bench
