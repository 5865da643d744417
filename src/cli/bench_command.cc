// `sluice bench`: flags and environment variables -> BenchOptions, run, print the report.
// SIGINT and SIGTERM stop the run early; the report still covers what was measured.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include "bench/load_generator.h"
#include "bench/raw_xadd.h"
#include "bench/run_log.h"
#include "cli/commands.h"

namespace sluice::cli {
namespace {

// Numbers are taken as text and parsed here, so a bad value gets our sentence and exit code 2
// rather than a generic parser error.
struct BenchFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string mix = "fixed";
  std::string endpoint = "batch";
  bool endpoint_given = false;  // --endpoint or its variable was set (refused with --mix seed)
  bool batch_given = false;
  std::string id_prefix;
  std::string acked_out;
  std::string series_out;
  std::string connections = "16";
  std::string threads = "1";
  std::string batch = "100";
  std::string rate = "0";
  std::string duration = "10";
  std::string warmup = "0";
  std::string probe_interval = "0";
  std::string probe_engine = "duckdb";
  std::string probe_lookback = "2";
  std::string read_key;
  bool gzip = false;
  std::string write_key;
  std::string event_bytes = "2048";
  std::string templates = "0";
  std::string seed = "1";
  std::string format = "text";
  std::string out;
  std::string raw_xadd;
  std::string raw_xadd_stream = "sluice:bench-raw";
  bool raw_xadd_keep = false;
};

template <typename T>
Status ParseWhole(std::string_view flag, const std::string& text, T min, T max, T* out) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Status::InvalidArgument(std::string(flag) + " must be a whole number from " +
                                   std::to_string(min) + " to " + std::to_string(max) + " (got '" +
                                   text + "')");
  }
  *out = v;
  return Status::OK();
}

Status ParseSeconds(std::string_view flag, const std::string& text, double min, double* out) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !(v >= min) || v > 1e9) {
    return Status::InvalidArgument(std::string(flag) + " must be a number" +
                                   (min > 0 ? " above 0" : " of 0 or more") + " (got '" + text +
                                   "')");
  }
  *out = v;
  return Status::OK();
}

Result<bench::BenchOptions> ToOptions(const BenchFlags& f) {
  bench::BenchOptions o;
  o.url = f.url;
  o.mix = f.mix;
  // --endpoint noop is the one endpoint the seed mix takes: its requests go to the no-op
  // handler instead (the HTTP stack's limit for the same requests).
  const bool endpoint_refused = f.endpoint_given && f.endpoint != "noop";
  if (f.mix == "seed" && (endpoint_refused || f.batch_given)) {
    return Status::InvalidArgument(
        std::string("--mix seed draws each request's endpoint and size itself (60% single "
                    "events to /v1/track, 25% batches of 5-20 and 15% of 100-500 to "
                    "/v1/batch; --endpoint noop sends them all to /v1/noop): drop ") +
        (endpoint_refused ? "--endpoint" : "--batch"));
  }
  o.endpoint = f.endpoint;
  o.id_prefix = f.id_prefix;
  o.record_acked = !f.acked_out.empty();
  o.record_series = !f.series_out.empty();
  SLUICE_RETURN_IF_ERROR(ParseWhole("--connections", f.connections, 1, 10000, &o.connections));
  SLUICE_RETURN_IF_ERROR(ParseWhole("--threads", f.threads, 1, 256, &o.threads));
  SLUICE_RETURN_IF_ERROR(ParseWhole("--batch", f.batch, 1, 100000, &o.batch));
  SLUICE_RETURN_IF_ERROR(ParseSeconds("--rate", f.rate, 0, &o.rate));
  SLUICE_RETURN_IF_ERROR(ParseSeconds("--duration", f.duration, 1e-3, &o.duration_s));
  SLUICE_RETURN_IF_ERROR(ParseSeconds("--warmup", f.warmup, 0, &o.warmup_s));
  SLUICE_RETURN_IF_ERROR(
      ParseSeconds("--probe-interval", f.probe_interval, 0, &o.probe_interval_s));
  o.read_key = f.read_key;
  if (f.probe_engine != "duckdb" && f.probe_engine != "postgres") {
    return Status::InvalidArgument("--probe-engine must be duckdb or postgres");
  }
  o.probe_engine = f.probe_engine;
  SLUICE_RETURN_IF_ERROR(
      ParseSeconds("--probe-lookback", f.probe_lookback, 0, &o.probe_lookback_s));
  SLUICE_RETURN_IF_ERROR(
      ParseWhole<size_t>("--event-bytes", f.event_bytes, 1, size_t{1} << 20, &o.event_bytes));
  SLUICE_RETURN_IF_ERROR(
      ParseWhole<size_t>("--templates", f.templates, 0, size_t{1} << 20, &o.templates));
  SLUICE_RETURN_IF_ERROR(
      ParseWhole<uint64_t>("--seed", f.seed, 0, std::numeric_limits<uint64_t>::max(), &o.seed));
  o.gzip = f.gzip;
  o.write_key = f.write_key;
  o.raw_xadd_url = f.raw_xadd;
  o.raw_xadd_stream = f.raw_xadd_stream;
  o.raw_xadd_keep = f.raw_xadd_keep;
  return o;
}

// Turns SIGINT and SIGTERM into a stop request for the run, from construction on: the first
// one stops the run (which then still reports), a second one ends the process at once with
// 128 + the signal, without a report. Must be constructed before the run starts its threads,
// which inherit the blocked signal mask. The signals stay blocked after destruction (the
// command returns to exit), so one arriving while the report is printed is ignored.
class StopOnSignals {
 public:
  StopOnSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    watcher_ = std::jthread([this](std::stop_token done) { Watch(done); });
  }
  std::stop_token token() const { return stop_.get_token(); }

 private:
  void Watch(const std::stop_token& done) {
    const timespec tick{0, 100'000'000};  // how soon the watcher notices `done`
    while (!done.stop_requested()) {
      siginfo_t info;
      const int sig = sigtimedwait(&signals_, &info, &tick);
      if (sig < 0) continue;  // timeout or EINTR
      if (stop_.stop_requested()) std::_Exit(128 + sig);
      std::cerr << "sluice bench: " << strsignal(sig)
                << ": stopping; waiting for the answers in flight, then the report (signal "
                   "again to quit without it)\n";
      stop_.request_stop();
    }
  }

  sigset_t signals_{};
  std::stop_source stop_;
  std::jthread watcher_;  // last: stopped and joined before the members it uses go
};

int RunBenchCommand(const BenchFlags& flags) {
  auto fail = [](const Status& s) {
    std::cerr << "sluice bench: " << s.message() << "\n";
    return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
  };
  Result<bench::BenchOptions> options = ToOptions(flags);
  if (!options.ok()) return fail(options.status());
  Result<bench::ReportFormat> format = bench::ParseReportFormat(flags.format);
  if (!format.ok()) return fail(format.status());
  if (Status s = bench::ValidateBenchOptions(*options); !s.ok()) return fail(s);

  if (options->raw_xadd_url.empty()) {
    std::cerr << "sluice bench: " << options->connections << " connections to " << options->url
              << (options->mix == "seed" ? std::string(" with the seed mix of /v1/track and "
                                                       "/v1/batch")
                                         : "/v1/" + options->endpoint)
              << " for " << options->duration_s << " s";
  } else {
    std::cerr << "sluice bench: raw XADD to stream " << options->raw_xadd_stream << " at "
              << bench::RedisUrlForDisplay(options->raw_xadd_url) << ", " << options->connections
              << " connections, for " << options->duration_s << " s";
  }
  if (options->warmup_s > 0) std::cerr << " after " << options->warmup_s << " s of warmup";
  std::cerr << " (SIGINT/SIGTERM stop it early, with a report)\n";
  Result<bench::BenchReport> report = [&] {
    StopOnSignals signals;
    return bench::RunBench(*options, signals.token());
  }();
  if (!report.ok()) return fail(report.status());

  std::cout << bench::FormatReport(*report, *format) << std::flush;
  int rc = 0;
  auto write = [&](const std::string& path, const std::string& what, const std::string& text) {
    if (path.empty()) return;
    std::ofstream file(path, std::ios::trunc);
    file << text;
    file.close();
    if (!file) {
      std::cerr << "sluice bench: could not write the " << what << " to " << path << "\n";
      rc = 1;
    }
  };
  write(flags.out, "report", bench::FormatReport(*report, bench::ReportFormat::kJson));
  write(flags.acked_out, "acknowledged requests", bench::FormatAckedCsv(report->acked));
  write(flags.series_out, "series", bench::FormatSeriesCsv(report->series));
  return rc;
}

}  // namespace

void SetupBench(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Send generated events to a running sluice server (or, with --raw-xadd, straight to "
      "Redis) and report throughput and latency");
  auto option = [&](const char* name, std::string* value, const char* env, const char* type,
                    const char* help) {
    cmd->add_option(name, *value, help)->envname(env)->type_name(type)->capture_default_str();
  };
  option("--url", &flags->url, "SLUICE_BENCH_URL", "URL", "Server base URL (http://HOST:PORT)");
  option("--mix", &flags->mix, "SLUICE_BENCH_MIX", "fixed|seed",
         "Request mix. fixed: every request to --endpoint with --batch events. seed: each "
         "request drawn (reproducibly, from --seed): 60% browser-like single events POST "
         "/v1/track, 25% browser-SDK batches POST /v1/batch of 5-20 events, 15% server-side "
         "batches POST /v1/batch of 100-500 events (48.7 events per request on average); "
         "--batch and --endpoint other than noop (the same requests to the no-op handler) are "
         "refused with it; with --raw-xadd each round trip carries one request's events");
  auto* endpoint =
      cmd->add_option("--endpoint", flags->endpoint,
                      "batch: POST /v1/batch; track: /v1/track, one event per request; events: "
                      "/v1/events NDJSON; noop: /v1/noop with batch bodies (the HTTP ceiling)")
          ->envname("SLUICE_BENCH_ENDPOINT")
          ->type_name("batch|track|events|noop")
          ->capture_default_str();
  option("--connections", &flags->connections, "SLUICE_BENCH_CONNECTIONS", "N",
         "Keep-alive connections, one request in flight each");
  option("--threads", &flags->threads, "SLUICE_BENCH_THREADS", "N", "Client event-loop threads");
  auto* batch = cmd->add_option("--batch", flags->batch, "Events per request (--mix fixed)")
                    ->envname("SLUICE_BENCH_BATCH")
                    ->type_name("N")
                    ->capture_default_str();
  option("--rate", &flags->rate, "SLUICE_BENCH_RATE", "EVENTS/S",
         "Open-loop target rate in events (not requests) per second over all connections; 0 = "
         "closed loop, as fast as possible");
  option("--duration", &flags->duration, "SLUICE_BENCH_DURATION", "SECONDS", "Measured run time");
  option("--warmup", &flags->warmup, "SLUICE_BENCH_WARMUP", "SECONDS",
         "Load sent before the measurement and not counted");
  cmd->add_flag("--gzip", flags->gzip, "Send gzip bodies (Content-Encoding: gzip)")
      ->envname("SLUICE_BENCH_GZIP");
  option("--write-key", &flags->write_key, "SLUICE_BENCH_WRITE_KEY", "KEY",
         "Write key, sent as the HTTP Basic user name");
  option("--probe-interval", &flags->probe_interval, "SLUICE_BENCH_PROBE_INTERVAL", "SECONDS",
         "Send a freshness probe this often and time it from acknowledgement to visibility in "
         "/v1/query (0 = off)");
  option("--read-key", &flags->read_key, "SLUICE_BENCH_READ_KEY", "KEY",
         "Read key for the probes' queries, sent as a Bearer token");
  option("--probe-engine", &flags->probe_engine, "SLUICE_BENCH_PROBE_ENGINE", "duckdb|postgres",
         "The /v1/query engine the probes ask: duckdb, or postgres with a PostgreSQL hot store "
         "(whose rows the DuckDB engine does not see until they are exported)");
  option("--probe-lookback", &flags->probe_lookback, "SLUICE_BENCH_PROBE_LOOKBACK", "SECONDS",
         "The probes' queries read only events received at most this long before the probe "
         "was sent (a full scan of `events` per poll would load the store more than the "
         "pipeline does); the client's clock must not run ahead of the server's by more");
  option("--event-bytes", &flags->event_bytes, "SLUICE_BENCH_EVENT_BYTES", "BYTES",
         "Mean JSON size of one event");
  option("--templates", &flags->templates, "SLUICE_BENCH_TEMPLATES", "N",
         "Distinct event templates (0 = automatic, at most 1024: repetitive data; 100000: "
         "closer to real data)");
  option("--seed", &flags->seed, "SLUICE_BENCH_SEED", "N",
         "Seed for the event contents and the --mix seed draws");
  option("--id-prefix", &flags->id_prefix, "SLUICE_BENCH_ID_PREFIX", "P",
         "Every event's messageId is P-<seq>, seq counting from 0 over the run in send order "
         "(the events of one request are consecutive); probes use P-probe-<n>. [A-Za-z0-9_.:-], "
         "at most 64 chars (default: 8 random hex digits, shown as id_prefix in the report)");
  option("--acked-out", &flags->acked_out, "SLUICE_BENCH_ACKED_OUT", "FILE",
         "After the run, write a CSV `first_seq,count` with one line per request answered HTTP "
         "200 with all of its events accepted, warmup included (its ids are P-first_seq .. "
         "P-(first_seq+count-1)); probes are not in it");
  option("--series-out", &flags->series_out, "SLUICE_BENCH_SERIES_OUT", "FILE",
         "After the run, write a CSV `second,offered_events,acked_events,error_requests,p50_ms,"
         "p99_ms`, one row per second of the measured run (latency of the requests acknowledged "
         "in that second; empty when none)");
  option("--format", &flags->format, "SLUICE_BENCH_FORMAT", "text|json", "Report format");
  option("--out", &flags->out, "SLUICE_BENCH_OUT", "FILE", "Also write the JSON report here");
  option("--raw-xadd", &flags->raw_xadd, "SLUICE_BENCH_RAW_XADD", "redis://HOST:PORT[/db]",
         "Instead of HTTP, send the same events straight to this Redis, the physical limit for "
         "a Redis buffer: per batch one pipelined round trip of --batch `XADD STREAM * r "
         "<event JSON>`, one connection and thread per --connections (--url, --endpoint, "
         "--threads, --write-key do not apply; --gzip and probes are refused). Same report. "
         "After the run the stream is DELeted, freeing Redis's memory (see --raw-xadd-keep)");
  option("--raw-xadd-stream", &flags->raw_xadd_stream, "SLUICE_BENCH_RAW_XADD_STREAM", "KEY",
         "Stream key for --raw-xadd (whatever it holds is deleted after the run)");
  cmd->add_flag("--raw-xadd-keep", flags->raw_xadd_keep,
                "Keep the --raw-xadd stream after the run instead of DELeting it")
      ->envname("SLUICE_BENCH_RAW_XADD_KEEP");
  cmd->callback([flags, exit_code, endpoint, batch] {
    flags->endpoint_given = endpoint->count() > 0;
    flags->batch_given = batch->count() > 0;
    *exit_code = RunBenchCommand(*flags);
  });
}

}  // namespace sluice::cli
