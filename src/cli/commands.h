// The sluice subcommands. Each Setup* adds one subcommand to `app`; when that subcommand is
// chosen, its callback runs it and stores the process exit code in *exit_code (0 on success,
// non-zero with a sentence on stderr saying what to fix).
#pragma once

namespace CLI {
class App;
}

namespace sluice::cli {

void SetupServe(CLI::App& app, int* exit_code);
void SetupBench(CLI::App& app, int* exit_code);
void SetupVersion(CLI::App& app, int* exit_code);
void SetupExport(CLI::App& app, int* exit_code);
void SetupQuery(CLI::App& app, int* exit_code);
void SetupMigrate(CLI::App& app, int* exit_code);

// Parses argv and runs the chosen subcommand; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace sluice::cli
