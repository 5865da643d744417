// MakeBuffer: builds the Buffer the configuration names, so callers hold only the interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "buffer/buffer.h"
#include "common/status.h"

namespace sluice::buffer {

struct BufferConfig {
  std::string kind = "disk";             // "disk" | "memory" | "redis://[:pw@]host[:port][/db]"
  std::string dir;                       // disk: the log directory
  uint64_t segment_bytes = 64ull << 20;  // disk: segment size
  uint64_t max_bytes = 8ull << 30;       // disk and memory: the byte cap
  bool fsync = true;                     // disk: false only for tests and benchmarks
  // redis (see redis_streams.h): the stream, the consumer group and this process's consumer
  // name, the lease TTL after which another consumer claims the stream, WAIT for replicas.
  // max_bytes applies too (0 = no cap of ours; Redis's maxmemory).
  std::string redis_stream = "sluice:events";
  std::string redis_group = "sluice";
  std::string redis_consumer = "sluice";
  std::chrono::milliseconds redis_claim_after{30'000};
  int redis_wait_replicas = 0;
  std::chrono::milliseconds redis_wait_timeout{1000};
};

// "disk" opens a DiskLog in config.dir (see disk_log.h for its errors); "memory" makes a
// MemoryBuffer capped at max_bytes; "redis://…" opens RedisStreams on that server (Unavailable
// when it does not answer; errors never echo the URL's password). Any other kind is
// InvalidArgument with a sentence saying which kinds exist.
Result<std::unique_ptr<Buffer>> MakeBuffer(const BufferConfig& config);

}  // namespace sluice::buffer
