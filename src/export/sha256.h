// SHA-256 of byte strings and files (OpenSSL libcrypto), in lowercase hex: the checksum the
// manifest records for each exported file.
//
// Concurrency: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::exporter {

// 64 lowercase hex digits.
std::string Sha256Hex(std::string_view data);

struct FileDigest {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
};

// Reads the file at `path` once, returning its size and SHA-256. IOError (NotFound for a
// missing file) with strerror and the path.
Result<FileDigest> DigestFile(const std::string& path);

}  // namespace sluice::exporter
