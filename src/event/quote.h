// Quoting client-supplied text inside error messages (private to src/event).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::event {

// `text` in double quotes with JSON-style escapes for quotes, backslashes and control bytes,
// cut after `max_bytes` bytes with "..." appended, so a message stays one short line whatever
// the client sent.
std::string QuoteForMessage(std::string_view text, size_t max_bytes = 64);

}  // namespace sluice::event
