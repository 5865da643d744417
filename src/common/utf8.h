// UTF-8 validation and repair for text that goes into stores which refuse invalid UTF-8
// (DuckDB refuses a whole append, PostgreSQL a whole COPY), so that one bad string cannot fail
// a batch for ever.
//
// Valid means what DuckDB and PostgreSQL accept: no overlong forms, no surrogates, nothing past
// U+10FFFF.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

bool IsValidUtf8(std::string_view s);

// *out = `s` with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD
// (and, when replace_nul, every NUL byte too: PostgreSQL text cannot hold one).
void RepairUtf8(std::string_view s, std::string* out, bool replace_nul = false);

}  // namespace sluice
