#include "bench/run_common.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <random>

namespace sluice::bench::internal {
namespace {

// Generated templates are kept under about this many bytes in total.
constexpr size_t kTemplatePoolBytes = 64u << 20;
constexpr size_t kMaxEventBytes = 1u << 20;

}  // namespace

SteadyClock::duration Seconds(double s) {
  return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
}

Status CheckOptions(const BenchOptions& o) {
  auto bad = [](const std::string& s) { return Status::InvalidArgument(s); };
  if (o.endpoint != "batch" && o.endpoint != "track" && o.endpoint != "events" &&
      o.endpoint != "noop") {
    return bad("--endpoint must be one of batch, track, events, noop (got '" + o.endpoint + "')");
  }
  if (o.mix != "fixed" && o.mix != "seed") {
    return bad("--mix must be fixed or seed (got '" + o.mix + "')");
  }
  if (!o.id_prefix.empty() && !ValidIdPrefix(o.id_prefix)) {
    return bad("--id-prefix must be 1 to " + std::to_string(kMaxIdPrefixLength) +
               " of the characters A-Z a-z 0-9 _ . : - (got '" + o.id_prefix + "')");
  }
  if (o.connections < 1 || o.connections > 10000) {
    return bad("--connections must be between 1 and 10000 (got " + std::to_string(o.connections) +
               ")");
  }
  if (o.threads < 1 || o.threads > 256) {
    return bad("--threads must be between 1 and 256 (got " + std::to_string(o.threads) + ")");
  }
  if (o.batch < 1 || o.batch > 100000) {
    return bad("--batch must be between 1 and 100000 (got " + std::to_string(o.batch) + ")");
  }
  if (!(o.rate >= 0) || !std::isfinite(o.rate)) {
    return bad("--rate must be a number of events per second, 0 for as fast as possible");
  }
  if (!(o.duration_s > 0) || o.duration_s > 7 * 86400.0) {
    return bad("--duration must be a positive number of seconds, at most a week");
  }
  if (!(o.warmup_s >= 0) || o.warmup_s > 86400.0) {
    return bad("--warmup must be between 0 and 86400 seconds");
  }
  if (o.event_bytes < 1 || o.event_bytes > kMaxEventBytes) {
    return bad("--event-bytes must be between 1 and " + std::to_string(kMaxEventBytes));
  }
  if (o.templates * o.event_bytes > (size_t{1} << 30)) {
    return bad("--templates x --event-bytes must be at most 1 GiB (the pool is held in memory)");
  }
  if (!(o.drain_timeout_s >= 0) || !(o.connect_timeout_s > 0)) {
    return bad("drain and connect timeouts must be positive");
  }
  return Status::OK();
}

std::string FreshIdPrefix() {
  std::random_device rd;
  const uint64_t id = (uint64_t{rd()} << 32 | rd()) ^
                      static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count());
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", static_cast<unsigned>(id ^ (id >> 32)));
  return std::string(hex, 8);
}

EventGeneratorOptions GeneratorOptionsFor(const BenchOptions& options,
                                          const std::string& id_prefix, EventMix mix) {
  EventGeneratorOptions g;
  g.event_bytes = options.event_bytes;
  g.seed = options.seed;
  g.id_prefix = id_prefix;
  g.mix = mix;
  g.template_count = options.templates > 0
                         ? options.templates
                         : std::clamp<size_t>(kTemplatePoolBytes / options.event_bytes, 16, 1024);
  return g;
}

SteadyClock::duration OpenLoopInterval(double rate, int connections, int batch) {
  // Rounded up, not down: the slots then drift (by under 1 ns per interval) late rather than
  // early, so a slot that is due exactly at the end (a round duration at a round rate) falls
  // after it instead of a few ns before it, where it could never be sent and would count as
  // missed in every run.
  const auto interval = std::chrono::ceil<SteadyClock::duration>(
      std::chrono::duration<double>(static_cast<double>(connections) * batch / rate));
  return std::max<SteadyClock::duration>(interval, SteadyClock::duration(1));
}

uint64_t MissedSlots(SteadyClock::time_point next_slot, SteadyClock::time_point measure_start,
                     SteadyClock::time_point end, SteadyClock::duration interval) {
  auto first = next_slot;
  if (first < measure_start) {
    const auto behind = (measure_start - first).count();
    const auto step = interval.count();
    first += SteadyClock::duration((behind + step - 1) / step * step);
  }
  if (first >= end) return 0;
  return static_cast<uint64_t>((end - first - SteadyClock::duration(1)).count() /
                               interval.count()) +
         1;
}

void AddWorkerStats(const WorkerStats& s, BenchReport* report, LatencyHistogram* latency,
                    SteadyClock::time_point* last_answer) {
  latency->Merge(s.latency);
  report->requests_sent += s.requests_sent;
  report->requests_answered += s.requests_answered;
  report->requests_missed += s.requests_missed;
  report->events_missed += s.events_missed;
  report->events_sent += s.events_sent;
  report->events_acked += s.events_acked;
  report->events_rejected += s.events_rejected;
  report->acked_json_bytes += s.acked_json_bytes;
  report->body_bytes_sent += s.body_bytes_sent;
  report->connects += s.connects;
  for (const auto& [status, n] : s.status_counts) report->status_counts[status] += n;
  for (const auto& [msg, n] : s.connection_errors) report->connection_errors[msg] += n;
  for (const auto& [msg, n] : s.reply_errors) report->reply_errors[msg] += n;
  for (const auto& [key, n] : s.errors_by_status) report->errors_by_status[key] += n;
  for (const auto& [kind, n] : s.requests_by_kind) report->requests_by_kind[kind] += n;
  report->acked.insert(report->acked.end(), s.acked.begin(), s.acked.end());
  *last_answer = std::max(*last_answer, s.last_answer);
}

void Summarize(const LatencyHistogram& latency, BenchReport* report) {
  const double ms = 1e-3;
  report->latency.count = latency.Count();
  report->latency.p50_ms = latency.Percentile(0.50) * ms;
  report->latency.p90_ms = latency.Percentile(0.90) * ms;
  report->latency.p99_ms = latency.Percentile(0.99) * ms;
  report->latency.p999_ms = latency.Percentile(0.999) * ms;
  report->latency.max_ms = static_cast<double>(latency.Max()) * ms;
  report->latency.mean_ms = latency.Mean() * ms;

  const double elapsed = std::max(report->elapsed_s, 1e-9);
  report->requests_per_s = static_cast<double>(report->requests_answered) / elapsed;
  report->events_per_s = static_cast<double>(report->events_acked) / elapsed;
  report->offered_events_per_s = static_cast<double>(report->events_sent) / elapsed;
  report->mb_per_s = static_cast<double>(report->acked_json_bytes) / elapsed / 1e6;
  if (report->open_loop) {
    const auto scheduled_events =
        static_cast<double>(report->events_sent + report->events_missed);
    report->rate_target_met = report->requests_missed == 0 &&
                              static_cast<double>(report->events_acked) >= 0.99 * scheduled_events;
  }
}

bool StoppedBefore(const std::stop_token& stop, SteadyClock::time_point t) {
  std::mutex mu;
  std::unique_lock lock(mu);
  std::condition_variable_any cv;
  return cv.wait_until(lock, stop, t, [] { return false; }) || stop.stop_requested();
}

}  // namespace sluice::bench::internal
