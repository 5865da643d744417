// `sluice migrate --store postgres://…`: applies the PostgreSQL hot store's schema migrations
// that the database lacks (sluice serve applies them at start too), then exits.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "store/postgres_store.h"

namespace sluice::cli {

void SetupMigrate(CLI::App& app, int* exit_code) {
  auto url = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("migrate",
                                 "Apply the PostgreSQL hot store's schema migrations, then exit");
  cmd->add_option("--store", *url, "The PostgreSQL primary: postgres://USER@HOST:PORT/DB")
      ->envname("SLUICE_STORE")
      ->required();
  cmd->callback([url, exit_code] {
    if (url->rfind("postgres://", 0) != 0 && url->rfind("postgresql://", 0) != 0) {
      std::fprintf(stderr,
                   "sluice migrate: --store must be a postgres:// URL (the DuckDB store needs "
                   "no migration)\n");
      *exit_code = 2;
      return;
    }
    Result<int> applied = store::MigratePostgres(*url);
    if (!applied.ok()) {
      std::fprintf(stderr, "sluice migrate: %s\n", applied.status().ToString().c_str());
      *exit_code = applied.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
      return;
    }
    std::printf("applied %d migration(s); the schema is up to date\n", *applied);
    *exit_code = 0;
  });
}

}  // namespace sluice::cli
