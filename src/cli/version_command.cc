#include <duckdb.h>

#include <CLI/CLI.hpp>
#include <boost/version.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/version.h"

namespace sluice::cli {

void SetupVersion(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the version of sluice and its libraries");
  cmd->callback([exit_code] {
    std::printf("sluice %s (DuckDB %s, Boost %d.%d)\n", kVersion, duckdb_library_version(),
                BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000);
    *exit_code = 0;
  });
}

}  // namespace sluice::cli
