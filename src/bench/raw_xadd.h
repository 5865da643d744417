// Raw pipelined XADD: `sluice bench --raw-xadd redis://…`, the physical limit beside which
// ingest into a Redis buffer is measured. It sends the events the HTTP mode would send straight
// to Redis, with nothing of sluice in between.
//
// Contract:
//  - Events: the same EventGenerator, built from the same options as the HTTP mode's batch
//    endpoint (event_bytes, templates, seed; a fresh id prefix), so the payloads have the same
//    sizes and contents. Each event is its JSON as a /v1/batch body would carry it (without the
//    body's framing), stamped with the batch's wall-clock time.
//  - Wire: each event is one command `XADD <stream> * r <event JSON>`. A batch of `batch` events
//    is ONE round trip: its commands are appended to the connection's output buffer
//    (redisAppendCommandArgv), written together, then the `batch` replies are read
//    (redisGetReply). No MULTI/EXEC. One blocking hiredis connection per `connections`, each
//    on its own thread (`threads` does not apply), at most one batch in flight on each.
//  - Measurement: warmup, closed loop / open loop (`rate`, slots staggered across connections,
//    latency from the slot: no coordinated omission), the end, stop requests and the drain time
//    work as load_generator.h describes, with "request" = one batch's round trip. A latency is
//    recorded when all of a batch's replies have arrived.
//  - Counting: an event is acked when its XADD is answered with an entry ID. An error reply
//    (e.g. OOM under maxmemory-policy noeviction) is counted by message in reply_errors and is
//    not fatal. A lost, refused or timed-out connection is counted by message in
//    connection_errors: the batch's XADDs still unanswered are not acked (Redis may or may not
//    have run them) and the connection reconnects with a backoff (10 ms doubling to 1 s).
//  - After the run: XLEN of the stream goes into the report (stream_entries; it also counts
//    entries the stream held before the run), then, unless raw_xadd_keep, a synchronous DEL of
//    the stream so that Redis's memory is free when RunRawXadd returns. The stream is the
//    benchmark's own: do not point it at a key that matters.
//
// Errors: InvalidArgument (with a sentence naming the flag) for a bad URL, an empty stream key,
// or options that do not apply (gzip, freshness probes, an endpoint other than batch);
// Unavailable when Redis cannot be reached before the run, and AUTH/SELECT errors as Redis
// gave them. Otherwise the report, whatever Redis answered; a failed XLEN/DEL after the run
// shows as stream_deleted = false with its reason in stream_error.
//
// Concurrency: RunRawXadd blocks until the run ends and may be called from any thread; it
// starts and joins one thread per connection.
#pragma once

#include <stop_token>
#include <string>

#include "bench/load_generator.h"
#include "common/status.h"

namespace sluice::bench {

// InvalidArgument unless options (with raw_xadd_url set) can run in raw XADD mode.
Status ValidateRawXaddOptions(const BenchOptions& options);

// Runs the raw XADD benchmark described above against options.raw_xadd_url.
Result<BenchReport> RunRawXadd(const BenchOptions& options, std::stop_token stop = {});

// The URL with its password, if any, replaced by "***" (for reports and logs).
std::string RedisUrlForDisplay(const std::string& url);

}  // namespace sluice::bench
