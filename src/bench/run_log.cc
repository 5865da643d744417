#include "bench/run_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sluice::bench {

std::string FormatAckedCsv(std::vector<AckedRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const AckedRange& a, const AckedRange& b) { return a.first_seq < b.first_seq; });
  std::string out = "first_seq,count\n";
  out.reserve(out.size() + ranges.size() * 16);
  for (const AckedRange& r : ranges)
    fmt::format_to(std::back_inserter(out), "{},{}\n", r.first_seq, r.count);
  return out;
}

SecondSeries::Bucket& SecondSeries::At(double t_s) {
  // A day's worth of rows at most: a clock gone wrong must not allocate without bound.
  const double clamped = std::clamp(t_s, 0.0, 7 * 86400.0 + 3600.0);
  const auto i = static_cast<size_t>(std::floor(clamped));
  if (i >= buckets_.size()) buckets_.resize(i + 1);
  return buckets_[i];
}

void SecondSeries::Offered(double t_s, uint64_t events) { At(t_s).offered += events; }

void SecondSeries::Acked(double t_s, uint64_t events, int64_t latency_us) {
  Bucket& b = At(t_s);
  b.acked += events;
  if (!b.latency) b.latency = std::make_unique<LatencyHistogram>();
  b.latency->Record(latency_us);
}

void SecondSeries::Error(double t_s) { ++At(t_s).errors; }

void SecondSeries::Merge(const SecondSeries& other) {
  if (other.buckets_.size() > buckets_.size()) buckets_.resize(other.buckets_.size());
  for (size_t i = 0; i < other.buckets_.size(); ++i) {
    const Bucket& from = other.buckets_[i];
    Bucket& to = buckets_[i];
    to.offered += from.offered;
    to.acked += from.acked;
    to.errors += from.errors;
    if (from.latency) {
      if (!to.latency) to.latency = std::make_unique<LatencyHistogram>();
      to.latency->Merge(*from.latency);
    }
  }
}

std::vector<SeriesRow> SecondSeries::Rows(uint64_t seconds) const {
  seconds = std::max<uint64_t>(seconds, 1);
  std::vector<SeriesRow> rows(seconds);
  std::vector<LatencyHistogram> latency(seconds);
  for (uint64_t i = 0; i < seconds; ++i) rows[i].second = i;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    const size_t row = std::min<size_t>(i, seconds - 1);
    const Bucket& b = buckets_[i];
    rows[row].offered_events += b.offered;
    rows[row].acked_events += b.acked;
    rows[row].error_requests += b.errors;
    if (b.latency) latency[row].Merge(*b.latency);
  }
  for (uint64_t i = 0; i < seconds; ++i) {
    rows[i].acked_requests = latency[i].Count();
    rows[i].p50_ms = latency[i].Percentile(0.50) / 1e3;
    rows[i].p99_ms = latency[i].Percentile(0.99) / 1e3;
  }
  return rows;
}

std::string FormatSeriesCsv(const std::vector<SeriesRow>& rows) {
  std::string out = "second,offered_events,acked_events,error_requests,p50_ms,p99_ms\n";
  for (const SeriesRow& r : rows) {
    fmt::format_to(std::back_inserter(out), "{},{},{},{},", r.second, r.offered_events,
                   r.acked_events, r.error_requests);
    if (r.acked_requests > 0) {
      fmt::format_to(std::back_inserter(out), "{:.3f},{:.3f}\n", r.p50_ms, r.p99_ms);
    } else {
      out += ",\n";
    }
  }
  return out;
}

}  // namespace sluice::bench
