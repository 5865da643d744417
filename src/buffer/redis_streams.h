// RedisStreams: the Buffer contract (buffer.h) over one Redis stream (hiredis).
//
// Layout: every record is one stream entry with one field, "r" = the record's bytes, on the
// stream `stream` (default "sluice:events"). The entry ID encodes the record's offset:
// offset N has ID "0-(N+1)" (ID 0-0 is not allowed by Redis). We set IDs explicitly instead of
// letting Redis choose "ms-seq" IDs so that offsets stay one dense sequence from 0 as
// buffer.h promises (the loader, Stats' depth and Read's "beyond next_offset" rely on it), the
// encoding is trivially order-preserving, and no clock enters it. The price: ONE writer per
// stream. Redis enforces it: an XADD whose ID is not above the stream's last ID fails, the
// append is answered Internal and the writer re-reads the stream's last ID before the next one.
//
// Append: each call is ONE pipelined round trip `MULTI, XADD key 0-(N+1) r <bytes> ..., EXEC`
// run on a buffer-owned writer thread (Append itself never blocks on Redis; callbacks run on
// that thread). MULTI/EXEC makes the call all-or-nothing: under maxmemory-policy noeviction an
// OOM refuses the queued XADDs and EXEC aborts, so nothing of the call is stored. The callback
// reports OK only after Redis answered EXEC with every XADD's ID. "Durable" here means what the
// server's persistence gives: with appendonly yes + appendfsync everysec (scripts/redis.sh) an
// acknowledged record may be lost if the Redis host crashes within about a second.
// Errors: connection refused/lost/timed out -> Unavailable (with hiredis' message); OOM ->
// ResourceExhausted (with Redis's message); any other Redis error -> Internal. When the
// connection is lost after EXEC was sent we cannot know whether it ran: the call is answered
// Unavailable (the client retries, so the record may be stored twice: at-least-once) and the
// writer re-reads the stream's last ID on reconnect.
//
// Capacity: like MemoryBuffer, each record counts payload + kRecordOverheadBytes against
// max_bytes, checked inline in Append (ResourceExhausted before Append returns). Open() scans
// the retained entries once (XRANGE in chunks) to learn their sizes.
//
// Read(from) = XREAD COUNT max_records [BLOCK] STREAMS key 0-from, i.e. entries with ID above
// 0-from = offsets >= from. A waiting Read blocks in slices of at most 100 ms on its own
// connection so that Close wakes it within a slice.
// Commit(n) = XTRIM key MINID 0-(n+1): frees every entry with offset < n. The committed offset
// itself lives in the store; after a restart committed_offset is the first retained entry's
// offset, and records not trimmed yet are read again, which the store's committed offset makes
// harmless. Consumer groups (XREADGROUP/XAUTOCLAIM, several loaders) are a later step.
//
// Deleting the stream key resets offsets to 0: do not, while a store holds a committed offset.
// Concurrency: thread-safe as buffer.h requires. One mutex guards the counters; the writer and
// the reader each own their connection (the reader's under read_mu_).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "buffer/buffer.h"

struct redisContext;

namespace sluice::buffer {

// redis://[:password@]host[:port][/db] (port 6379, db 0 when absent).
// The password may also be "user:password" (ACL user, Redis 6+); no percent-decoding.
struct RedisUrl {
  std::string host;
  std::string user;
  int port = 6379;
  std::string password;
  int db = 0;
};
Result<RedisUrl> ParseRedisUrl(const std::string& url);

struct RedisStreamsOptions {
  std::string url;                       // redis://[:password@]host:port[/db]
  std::string stream = "sluice:events";  // the stream key
  uint64_t max_bytes = 1ull << 30;       // cap on payload + overhead of uncommitted records
  std::chrono::milliseconds timeout{2000};  // connect and per-command timeout
};

// Owns a redisContext; frees it on destruction.
struct RedisContextDeleter {
  void operator()(redisContext* c) const;
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

class RedisStreams final : public Buffer {
 public:
  static constexpr uint64_t kRecordOverheadBytes = 8;

  // Connects (Unavailable when Redis does not answer), reads the stream's state and starts the
  // writer thread.
  static Result<std::unique_ptr<RedisStreams>> Open(const RedisStreamsOptions& options);
  ~RedisStreams() override;
  RedisStreams(const RedisStreams&) = delete;
  RedisStreams& operator=(const RedisStreams&) = delete;

  void Append(std::vector<std::string> records, AppendCallback done) override;
  Result<std::vector<Record>> Read(uint64_t from, size_t max_records, size_t max_bytes,
                                   std::chrono::milliseconds wait) override;
  Status Commit(uint64_t offset) override;
  BufferStats Stats() const override;
  void Close() override;

 private:
  struct Pending {
    std::vector<std::string> records;
    AppendCallback done;
    uint64_t bytes = 0;
  };

  RedisStreams(RedisStreamsOptions options, RedisUrl url);
  Result<RedisContextPtr> Connect() const;
  Status LoadState(redisContext* c);  // next/committed offsets and sizes from the stream
  Status WriteOne(Pending& p);        // on the writer thread
  void WriterLoop();

  const RedisStreamsOptions options_;
  const RedisUrl url_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::deque<Pending> queue_;
  uint64_t next_offset_ = 0;
  uint64_t committed_offset_ = 0;
  std::deque<uint64_t> sizes_;  // payload bytes of offsets [committed_offset_, next_offset_)
  uint64_t used_bytes_ = 0;     // sizes_ + overhead
  uint64_t pending_bytes_ = 0;  // reserved by queued appends

  RedisContextPtr writer_conn_;  // writer thread only
  bool writer_resync_ = false;   // writer thread only: re-read the last ID before writing

  std::mutex read_mu_;
  RedisContextPtr read_conn_;  // under read_mu_

  std::mutex close_mu_;  // serializes Close's join
  std::thread writer_;
};

}  // namespace sluice::buffer
