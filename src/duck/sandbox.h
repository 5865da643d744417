// The query sandbox of a DuckDB database (DESIGN.md "Guarantees": the SQL endpoint cannot read
// or write outside Sluice's own data).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "duck/duck.h"

namespace sluice::duck {

struct SandboxOptions {
  // Directories DuckDB may read and write (the data dir, a local object store root, the
  // query cache). Everything else is refused with a Permission Error.
  std::vector<std::string> allowed_directories;
  std::string memory_limit = "4GB";  // the whole database's memory limit
};

// Applies the sandbox to `conn`'s database, globally and irreversibly for its lifetime:
// allowed_directories, enable_external_access=false (no files outside them, no ATTACH,
// INSTALL or LOAD), autoinstall/autoload of extensions off, the memory limit, then
// lock_configuration=true so no later SET can undo it. Call once, right after opening.
Status ApplySandbox(Connection& conn, const SandboxOptions& options);

}  // namespace sluice::duck
