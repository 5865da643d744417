// MakeBuffer: builds the Buffer the configuration names, so callers hold only the interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "buffer/buffer.h"
#include "common/status.h"

namespace sluice::buffer {

struct BufferConfig {
  std::string kind = "disk";             // "disk" | "memory" (later: "redis://host:port/...")
  std::string dir;                       // disk: the log directory
  uint64_t segment_bytes = 64ull << 20;  // disk: segment size
  uint64_t max_bytes = 8ull << 30;       // disk and memory: the byte cap
  bool fsync = true;                     // disk: false only for tests and benchmarks
};

// "disk" opens a DiskLog in config.dir (see disk_log.h for its errors); "memory" makes a
// MemoryBuffer capped at max_bytes. Any other kind is InvalidArgument with a sentence saying
// which kinds exist.
Result<std::unique_ptr<Buffer>> MakeBuffer(const BufferConfig& config);

}  // namespace sluice::buffer
