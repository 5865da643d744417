#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"

namespace sluice::cli {

int Main(int argc, char** argv) {
  CLI::App app{"sluice: a self-hosted event pipeline (HTTP ingest, durable buffer, SQL)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  int exit_code = 0;
  SetupServe(app, &exit_code);
  SetupBench(app, &exit_code);
  SetupVersion(app, &exit_code);
  SetupExport(app, &exit_code);
  SetupQuery(app, &exit_code);
  SetupMigrate(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}

}  // namespace sluice::cli
