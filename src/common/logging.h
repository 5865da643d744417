// Logging: spdlog with one format for the whole process. Log one line per notable event
// (start, stop, recovery, a dependency going down or coming back), never one per request.
#pragma once

#include <string_view>

namespace sluice {

// Sets the process-wide log level ("trace", "debug", "info", "warn", "error") and format.
// Unknown levels fall back to "info". Safe to call more than once.
void InitLogging(std::string_view level);

}  // namespace sluice
