// What `sluice bench` records per request for the files it writes after a run (besides the
// report): the acknowledged requests (--acked-out), from which a checker rebuilds the exact set
// of acknowledged messageIds, and a per-second series of the measured run (--series-out).
//
// Acked CSV: header `first_seq,count`, then one line per acknowledged request, sorted by
// first_seq: its events are the messageIds <id_prefix>-first_seq … <id_prefix>-(first_seq +
// count - 1). A request is acknowledged when it was answered HTTP 200 with "success":true and
// its "accepted" count, if the answer has one, covers all of its events (a partial
// acknowledgement does not say which events, so such a request is left out).
//
// Series CSV: header `second,offered_events,acked_events,error_requests,p50_ms,p99_ms`, one row
// per second of the measured run (second 0 starts at the end of the warmup): events of
// requests scheduled (open loop) or sent (closed loop) in that second; events of requests
// acknowledged in it; requests that failed in it (non-200 answers, network failures,
// timeouts); and the latency percentiles of the requests acknowledged in it, in ms (empty when
// none was). Answers that arrive after the measured time (the drain) count in the last row, so
// the columns sum to the report's totals.
//
// Concurrency: a SecondSeries belongs to one thread; Merge() them after the threads stop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/histogram.h"

namespace sluice::bench {

struct AckedRange {
  uint64_t first_seq = 0;
  uint64_t count = 0;
  bool operator==(const AckedRange&) const = default;
};

// The acked CSV of `ranges` (sorted by first_seq here).
std::string FormatAckedCsv(std::vector<AckedRange> ranges);

struct SeriesRow {
  uint64_t second = 0;
  uint64_t offered_events = 0, acked_events = 0, error_requests = 0;
  uint64_t acked_requests = 0;  // how many latencies p50/p99 are over; 0: they are empty
  double p50_ms = 0, p99_ms = 0;
};

class SecondSeries {
 public:
  // Times are seconds since the start of the measurement; negative ones count in second 0.
  void Offered(double t_s, uint64_t events);
  void Acked(double t_s, uint64_t events, int64_t latency_us);
  void Error(double t_s);
  void Merge(const SecondSeries& other);

  // `seconds` rows (at least 1), 0 .. seconds-1; whatever was recorded later counts in the last.
  std::vector<SeriesRow> Rows(uint64_t seconds) const;

 private:
  struct Bucket {
    uint64_t offered = 0, acked = 0, errors = 0;
    std::unique_ptr<LatencyHistogram> latency;  // made at the first acknowledgement
  };
  Bucket& At(double t_s);

  std::vector<Bucket> buckets_;
};

// The series CSV of `rows`.
std::string FormatSeriesCsv(const std::vector<SeriesRow>& rows);

}  // namespace sluice::bench
