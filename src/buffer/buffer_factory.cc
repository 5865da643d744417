#include "buffer/buffer_factory.h"

#include "buffer/disk_log.h"
#include "buffer/memory_buffer.h"

namespace sluice::buffer {

Result<std::unique_ptr<Buffer>> MakeBuffer(const BufferConfig& config) {
  if (config.kind == "disk") {
    DiskLogOptions options;
    options.dir = config.dir;
    options.segment_bytes = config.segment_bytes;
    options.max_bytes = config.max_bytes;
    options.fsync = config.fsync;
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<DiskLog> log, DiskLog::Open(options));
    return std::unique_ptr<Buffer>(std::move(log));
  }
  if (config.kind == "memory") {
    return std::unique_ptr<Buffer>(std::make_unique<MemoryBuffer>(config.max_bytes));
  }
  if (config.kind.starts_with("redis://")) {
    // The URL is not echoed: it may carry a password.
    return Status::InvalidArgument(
        "buffer redis://...: the Redis Streams buffer is not supported yet; use \"disk\" (or "
        "\"memory\" for tests)");
  }
  return Status::InvalidArgument("unknown buffer kind \"" + config.kind +
                                 "\": expected \"disk\" or \"memory\"");
}

}  // namespace sluice::buffer
