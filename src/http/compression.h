// Content-Encoding decoding for request bodies: gzip and deflate (zlib) and zstd, with a cap
// on the decoded size so a small compressed body cannot expand without bound (zip bombs).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::http {

// Decodes `in` per `encoding` ("gzip", "x-gzip", "deflate", "zstd", "identity" or empty) into
// *out. Errors: InvalidArgument for corrupt or truncated data; ResourceExhausted when the
// decoded body would pass `max_out` bytes; FailedPrecondition for an unsupported encoding.
Status DecodeBody(std::string_view encoding, std::string_view in, size_t max_out,
                  std::string* out);

// gzip-compresses `in` (level 1..9). For tests and the load generator.
std::string GzipCompress(std::string_view in, int level = 6);

}  // namespace sluice::http
