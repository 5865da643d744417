// The TOML config file of `sluice serve --config FILE`.
//
// Keys are the subcommand's long flag names without "--" (`data-dir = "/var/lib/sluice"`,
// `write-key = ["web:…"]`); values are strings, numbers, booleans or arrays of them. A key
// fills its option only when neither a flag nor the SLUICE_* environment variable set it, so
// the precedence is flag > environment > file > built-in default.
#pragma once

#include <string>

#include "common/status.h"

namespace CLI {
class App;
}

namespace sluice::cli {

// Applies `path` to the options of `cmd` (after cmd has parsed flags and the environment).
// InvalidArgument with a sentence naming the file, and the key or line, when the file cannot
// be read, is not TOML, names an unknown key, or has a value the option rejects.
Status ApplyConfigFile(CLI::App* cmd, const std::string& path);

}  // namespace sluice::cli
