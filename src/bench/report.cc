// FormatReport: the bench report as text for people and JSON for scripts.
#include <fmt/format.h>

#include <cmath>

#include "bench/load_generator.h"

namespace sluice::bench {
namespace {

// 1234567 -> "1,234,567".
std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Rate(double per_s) {
  return per_s >= 100 ? Thousands(static_cast<uint64_t>(std::llround(per_s)))
                      : fmt::format("{:.1f}", per_s);
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string JsonNumber(double v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : "null"; }

std::string LatencyOrigin(const BenchReport& r) {
  if (r.raw_xadd) {
    return r.open_loop ? "per batch round trip, from its scheduled send time (open loop: "
                         "includes waiting behind a slow answer, no coordinated omission)"
                       : "per batch round trip, from its send (closed loop)";
  }
  return r.open_loop ? "from each request's scheduled send time (open loop: includes waiting "
                       "behind a slow answer, no coordinated omission)"
                     : "from each request's send (closed loop: a slow server lowers the offered "
                       "load, so use --rate for latency under load)";
}

std::string Text(const BenchReport& r) {
  std::string out;
  auto line = [&](std::string_view label, const std::string& text) {
    out += fmt::format("{:<11} {}\n", label, text);
  };
  out += fmt::format("sluice bench: {} {}\n", r.method_and_path, r.url);
  line("load",
       fmt::format("{} connection{} on {} thread{}, {}, {}", r.connections,
                   r.connections == 1 ? "" : "s", r.threads, r.threads == 1 ? "" : "s",
                   r.mix == "seed" ? std::string("mix seed (60% single /v1/track, 25% batches of "
                                                 "5-20, 15% batches of 100-500)")
                                   : fmt::format("batch {}", r.batch),
                   r.open_loop ? fmt::format("open loop at {} events/s", Rate(r.target_rate))
                               : std::string("closed loop (as fast as possible)")));
  line("events",
       fmt::format("{:.0f} B mean JSON, seed {}, messageIds {} ({}-<seq>, seq from 0)",
                   r.mean_event_bytes, r.seed, r.unique_ids ? "unique" : "NOT unique",
                   r.id_prefix));
  if (r.raw_xadd) {
    line("raw xadd",
         "the events' JSON straight to Redis, one XADD each, no MULTI/EXEC; one "
         "blocking connection per thread");
  } else {
    line("gzip", r.gzip ? "on: bodies spliced from event templates compressed before the run, "
                          "fresh ids and timestamps in stored blocks; nothing compressed on the "
                          "clock"
                        : "off");
  }
  line("latency", LatencyOrigin(r));
  line("time", fmt::format("{:.2f} s measured ({:.2f} s to the last answer), {:.2f} s warmup "
                           "not counted",
                           r.duration_s, r.elapsed_s, r.warmup_s));
  if (r.stopped_early) {
    line("stopped", fmt::format("early, by a stop request, {:.2f} s into the {:.2f} s planned; "
                                "the figures cover the time measured",
                                r.duration_s, r.planned_duration_s));
  }
  out += "\n";
  line("requests", fmt::format("{} sent, {} answered, {}/s{}", Thousands(r.requests_sent),
                               Thousands(r.requests_answered), Rate(r.requests_per_s),
                               r.open_loop ? fmt::format(", {} scheduled but not sent",
                                                         Thousands(r.requests_missed))
                                           : std::string()));
  line("events", fmt::format("{} sent, {} acked = {}/s, {:.1f} MB/s of JSON; {} rejected",
                             Thousands(r.events_sent), Thousands(r.events_acked),
                             Rate(r.events_per_s), r.mb_per_s, Thousands(r.events_rejected)));
  line("latency ms",
       fmt::format("p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  "
                   "(mean {:.3f}, {} answers)",
                   r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms, r.latency.p999_ms,
                   r.latency.max_ms, r.latency.mean_ms, Thousands(r.latency.count)));
  if (r.raw_xadd) {
    uint64_t errors = 0;
    for (const auto& [message, n] : r.reply_errors) errors += n;
    line("replies", fmt::format("{} entry IDs, {} error replies", Thousands(r.events_acked),
                                Thousands(errors)));
    for (const auto& [message, n] : r.reply_errors) {
      line("", fmt::format("{} x {}", message, Thousands(n)));
    }
    line("stream", fmt::format("{}: {} entries after the run (XLEN), {}", r.stream,
                               Thousands(r.stream_entries),
                               r.stream_deleted         ? std::string("then deleted (DEL)")
                               : r.stream_error.empty() ? std::string("kept (--raw-xadd-keep)")
                                                        : "NOT deleted: " + r.stream_error));
  } else {
    std::string statuses;
    for (const auto& [status, n] : r.status_counts) {
      statuses += fmt::format("{}{} x {}", statuses.empty() ? "" : "   ", status, Thousands(n));
    }
    line("status", statuses.empty() ? "no answers" : statuses);
    std::string errors;
    for (const auto& [status, n] : r.errors_by_status) {
      errors += fmt::format("{}{} x {}", errors.empty() ? "" : "   ", status, Thousands(n));
    }
    line("not 200", errors.empty() ? "none" : errors + " (requests)");
    std::string kinds;
    for (const auto& [kind, n] : r.requests_by_kind) {
      kinds += fmt::format("{}{} x {}", kinds.empty() ? "" : "   ", kind, Thousands(n));
    }
    line("by kind", kinds.empty() ? "no requests" : kinds);
  }
  if (r.connection_errors.empty()) {
    line("conn errors", "none");
  } else {
    bool first = true;
    for (const auto& [message, n] : r.connection_errors) {
      line(first ? "conn errors" : "", fmt::format("{} x {}", message, Thousands(n)));
      first = false;
    }
  }
  line("rate", r.open_loop ? fmt::format("target {} events/s {}: offered {}/s, acked {}/s",
                                         Rate(r.target_rate), r.rate_target_met ? "met" : "NOT met",
                                         Rate(r.offered_events_per_s), Rate(r.events_per_s))
                           : std::string("no target (closed loop)"));
  if (r.probed) {
    line("freshness", fmt::format("ack to visible in /v1/query: p50 {:.1f} ms  p99 {:.1f} ms  max "
                                  "{:.1f} ms ({} probes, {} visible, {} timed out, {} errors)",
                                  r.freshness_p50_ms, r.freshness_p99_ms, r.freshness_max_ms,
                                  r.probes, r.probes_visible, r.probes_timed_out, r.probe_errors));
  }
  return out;
}

std::string Json(const BenchReport& r) {
  std::string out = "{";
  auto key = [&](std::string_view k) {
    if (out.size() > 1) out += ",";
    out += JsonString(k);
    out += ":";
  };
  auto str = [&](std::string_view k, std::string_view v) {
    key(k);
    out += JsonString(v);
  };
  auto num = [&](std::string_view k, double v) {
    key(k);
    out += JsonNumber(v);
  };
  auto count = [&](std::string_view k, uint64_t v) {
    key(k);
    out += std::to_string(v);
  };
  auto boolean = [&](std::string_view k, bool v) {
    key(k);
    out += v ? "true" : "false";
  };
  str("mode", r.raw_xadd ? "raw-xadd" : "http");
  str("mix", r.mix);
  str("url", r.url);
  str("endpoint", r.endpoint);
  str("request", r.method_and_path);
  count("connections", static_cast<uint64_t>(r.connections));
  count("threads", static_cast<uint64_t>(r.threads));
  count("batch", static_cast<uint64_t>(r.batch));
  boolean("open_loop", r.open_loop);
  num("target_events_per_s", r.target_rate);
  boolean("gzip", r.gzip);
  boolean("unique_ids", r.unique_ids);
  str("id_prefix", r.id_prefix);
  count("seed", r.seed);
  num("mean_event_bytes", r.mean_event_bytes);
  str("latency_from", r.open_loop ? "scheduled" : "send");
  num("warmup_s", r.warmup_s);
  num("duration_s", r.duration_s);
  num("planned_duration_s", r.planned_duration_s);
  boolean("stopped_early", r.stopped_early);
  num("elapsed_s", r.elapsed_s);
  count("requests_sent", r.requests_sent);
  count("requests_answered", r.requests_answered);
  count("requests_missed", r.requests_missed);
  count("events_missed", r.events_missed);
  num("requests_per_s", r.requests_per_s);
  count("events_sent", r.events_sent);
  count("events_offered", r.events_sent);
  count("events_acked", r.events_acked);
  count("events_rejected", r.events_rejected);
  num("events_per_s", r.events_per_s);
  num("offered_events_per_s", r.offered_events_per_s);
  num("mb_per_s", r.mb_per_s);
  count("acked_json_bytes", r.acked_json_bytes);
  count("body_bytes_sent", r.body_bytes_sent);
  count("connects", r.connects);
  count("latency_count", r.latency.count);
  num("p50_ms", r.latency.p50_ms);
  num("p90_ms", r.latency.p90_ms);
  num("p99_ms", r.latency.p99_ms);
  num("p999_ms", r.latency.p999_ms);
  num("max_ms", r.latency.max_ms);
  num("mean_ms", r.latency.mean_ms);
  key("latency_ms");
  out += fmt::format(R"({{"p50":{},"p90":{},"p99":{},"p999":{},"max":{},"mean":{}}})",
                     JsonNumber(r.latency.p50_ms), JsonNumber(r.latency.p90_ms),
                     JsonNumber(r.latency.p99_ms), JsonNumber(r.latency.p999_ms),
                     JsonNumber(r.latency.max_ms), JsonNumber(r.latency.mean_ms));
  auto map = [&](std::string_view k, const auto& m, auto keep) {
    key(k);
    out += "{";
    bool first = true;
    for (const auto& [name, n] : m) {
      if (!keep(name)) continue;
      if (!first) out += ",";
      first = false;
      out += JsonString(fmt::format("{}", name));
      out += ":" + std::to_string(n);
    }
    out += "}";
  };
  map("statuses", r.status_counts, [](int) { return true; });
  // HTTP error statuses, or in raw XADD mode Redis's error replies.
  if (r.raw_xadd) {
    map("errors", r.reply_errors, [](const std::string&) { return true; });
  } else {
    map("errors", r.status_counts, [](int status) { return status < 200 || status >= 300; });
  }
  map("connection_errors", r.connection_errors, [](const std::string&) { return true; });
  map("errors_by_status", r.errors_by_status, [](const std::string&) { return true; });
  map("requests_by_kind", r.requests_by_kind, [](const std::string&) { return true; });
  key("rate_target_met");
  out += r.open_loop ? (r.rate_target_met ? "true" : "false") : "null";
  if (r.raw_xadd) {
    str("stream", r.stream);
    count("stream_entries", r.stream_entries);
    boolean("stream_deleted", r.stream_deleted);
    str("stream_error", r.stream_error);
  }
  if (r.probed) {
    count("probes", r.probes);
    count("probes_visible", r.probes_visible);
    count("probes_timed_out", r.probes_timed_out);
    count("probe_errors", r.probe_errors);
    num("freshness_p50_ms", r.freshness_p50_ms);
    num("freshness_p99_ms", r.freshness_p99_ms);
    num("freshness_max_ms", r.freshness_max_ms);
  }
  out += "}\n";
  return out;
}

}  // namespace

Result<ReportFormat> ParseReportFormat(const std::string& name) {
  if (name == "text") return ReportFormat::kText;
  if (name == "json") return ReportFormat::kJson;
  return Status::InvalidArgument("--format must be text or json (got '" + name + "')");
}

std::string FormatReport(const BenchReport& report, ReportFormat format) {
  return format == ReportFormat::kJson ? Json(report) : Text(report);
}

}  // namespace sluice::bench
