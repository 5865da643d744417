#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/serve.h"

namespace sluice::cli {

void SetupServe(CLI::App& app, int* exit_code) {
  auto cfg = std::make_shared<ServeConfig>();
  auto* cmd = app.add_subcommand("serve", "Run the HTTP ingest server and the pipeline");
  // Every flag: --flag, SLUICE_FLAG in the environment, `flag = …` in the TOML config file.
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path,
                  "TOML config file; keys are the flag names, e.g. listen = \"127.0.0.1:8080\"")
      ->envname("SLUICE_CONFIG");
  auto opt = [&](const std::string& name, auto* target, const std::string& help) {
    std::string env = "SLUICE_";
    for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return cmd->add_option("--" + name, *target, help)->envname(env)->capture_default_str();
  };
  opt("listen", &cfg->listen, "Address to listen on, HOST:PORT (port 0 picks a free one)");
  opt("data-dir", &cfg->data_dir, "Directory for the buffer and every other file Sluice keeps");
  opt("buffer", &cfg->buffer, "Buffer: disk (durable segment log) or memory (loses data on crash)");
  opt("buffer-max-bytes", &cfg->buffer_max_bytes, "Cap on buffer bytes; beyond it ingest answers 503");
  opt("buffer-segment-bytes", &cfg->buffer_segment_bytes, "Size of one buffer segment file");
  opt("buffer-fsync", &cfg->buffer_fsync,
      "fsync before acknowledging (false only for benchmarks: acknowledged events may be lost)");
  opt("threads", &cfg->threads, "HTTP I/O threads (0 = one per core)");
  opt("max-body-bytes", &cfg->max_body_bytes, "Largest request body, before and after gzip");
  opt("max-event-bytes", &cfg->max_event_bytes, "Largest single event; larger ones are rejected");
  opt("max-batch-events", &cfg->max_batch_events, "Most events in one request body");
  opt("read-timeout", &cfg->read_timeout, "A started request must arrive whole within this");
  opt("idle-timeout", &cfg->idle_timeout, "Close keep-alive connections idle this long");
  opt("shutdown-grace", &cfg->shutdown_grace, "On SIGTERM, wait this long for requests in flight");
  opt("write-key", &cfg->write_keys, "Write key NAME:SECRET (repeatable; env: comma-separated)")
      ->delimiter(',');
  opt("read-key", &cfg->read_keys, "Read key NAME:SECRET (repeatable; env: comma-separated)")
      ->delimiter(',');
  opt("rate-limit", &cfg->rate_limit, "Events per second per write key (0 = unlimited)");
  opt("rate-burst", &cfg->rate_burst, "Token bucket size per key (0 = one second's worth)");
  opt("log-level", &cfg->log_level, "trace, debug, info, warn or error");
  cmd->add_flag("--noop-route", cfg->noop_route,
                "Serve POST /v1/noop (answers 200 and stores nothing): the HTTP ceiling for "
                "sluice bench")
      ->envname("SLUICE_NOOP_ROUTE");
  cmd->callback([cmd, cfg, config_path, exit_code] {
    if (!config_path->empty()) {
      if (Status st = ApplyConfigFile(cmd, *config_path); !st.ok()) {
        std::fprintf(stderr, "sluice serve: %s\n", st.message().c_str());
        *exit_code = 2;
        return;
      }
    }
    *exit_code = RunServe(*cfg);
  });
}

}  // namespace sluice::cli
