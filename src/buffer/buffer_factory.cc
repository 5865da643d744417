#include "buffer/buffer_factory.h"

#include "buffer/disk_log.h"
#include "buffer/memory_buffer.h"
#include "buffer/redis_streams.h"

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
    RedisStreamsOptions options;
    options.url = config.kind;
    options.stream = config.redis_stream;
    options.group = config.redis_group;
    options.consumer = config.redis_consumer;
    options.claim_after = config.redis_claim_after;
    options.wait_replicas = config.redis_wait_replicas;
    options.wait_timeout = config.redis_wait_timeout;
    options.max_bytes = config.max_bytes;
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<RedisStreams> streams, RedisStreams::Open(options));
    return std::unique_ptr<Buffer>(std::move(streams));
  }
  return Status::InvalidArgument("unknown buffer kind \"" + config.kind +
                                 "\": expected \"disk\", \"memory\" or redis://HOST:PORT");
}

}  // namespace sluice::buffer
