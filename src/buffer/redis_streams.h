// RedisStreams: the Buffer contract (buffer.h) over one Redis stream (hiredis), consumed
// through a consumer group.
//
// Layout: every record is one stream entry with one field, "r" = the record's bytes, on the
// stream `stream` (default "sluice:events"). The entry ID encodes the record's offset: offset N
// has ID "0-(N+1)" (ID 0-0 is not allowed by Redis). Writers add entries with the ID "0-*"
// (Redis 7: sequence chosen by the server), so offsets stay one dense sequence from 0 as
// buffer.h promises, however many processes write to the stream, and no clock enters them. A
// stream whose top ID has a non-zero time part (written by something else with "*") refuses
// "0-*": the append is answered Internal with Redis's message.
//
// Append: each call is one transaction `MULTI, XADD key 0-* r <bytes> ..., EXEC` sent by a
// buffer-owned writer thread (Append itself never blocks on Redis; callbacks run on that
// thread). The writer sends every append queued meanwhile (up to kMaxPipelined appends or
// kMaxPipelinedBytes) in ONE pipelined round trip, each its own MULTI/EXEC, then one
// `WAIT n timeout` for all of them: group commit, as DiskLog shares one fsync. MULTI/EXEC makes the
// call all-or-nothing and contiguous: under maxmemory-policy noeviction an OOM refuses the queued
// XADDs and EXEC aborts, so nothing of the call is stored. The callback reports OK only after Redis
// answered EXEC with every XADD's ID, and with wait_replicas > 0 only after WAIT reported that many
// replicas have the writes. "Durable" means what the server's persistence gives: with appendonly
// yes + appendfsync everysec (scripts/redis.sh) an acknowledged record may be lost if the Redis
// host crashes within about a second; with wait_replicas, only if the primary and those replicas
// all fail. Errors: connection refused/lost/timed out -> Unavailable (with hiredis' message), and
// for `max_backoff` after a failed connect further appends fail fast with Unavailable (no connect
// attempt) — reconnect with exponential backoff from 100 ms; OOM -> ResourceExhausted (with
// Redis's message); fewer replicas than wait_replicas -> UnknownOutcome (the records ARE
// stored on the primary: a client's retry is dropped by the loader's dedup); other Redis errors
// -> Internal. When the connection is lost after EXEC was sent we cannot know whether it ran:
// UnknownOutcome as well (never Unavailable, which promises nothing was stored and lets the
// router spill the records to disk).
//
// Capacity: each record counts payload + kRecordOverheadBytes against max_bytes (0 = no cap
// here: Redis's maxmemory is then the only cap), checked inline in Append (ResourceExhausted
// before Append returns). Sizes are known exactly for records this process appended or read;
// records other processes appended count at the mean size seen. The stream's top and the group's
// committed point are re-read every second by the writer thread (and at every Commit), so an
// ingest-only process sees the backlog shrink as another process's loader commits.
//
// Consumption (one consumer group, `group`, default "sluice"; this process is consumer
// `consumer`): ONE consumer per stream at a time loads it, because the hot store keeps one
// committed offset per shard and must receive the shard's records in order. That consumer holds
// a lease, the key "<stream>:lease" = consumer name with a TTL of `claim_after`, renewed every
// claim_after/3 by a heartbeat thread. A process whose lease is taken by another (it stalled
// past the TTL) gets Aborted from its next Read: its loader re-reads the store's offset.
//   Read(from): without the lease, waits up to `wait` to take it, then answers Unavailable
//   ("standing by"); the Read that takes it after standing by answers Aborted, because the
//   previous holder loaded meanwhile (its loader re-reads the store's offset). With it:
//   offsets below the group's last delivered entry (entries another consumer — e.g. a process
//   that was killed — or this one received but never acknowledged) are taken over with
//   XAUTOCLAIM (min idle 0: the lease already proves their owner is gone)
//   and returned from `from` on; new entries come from XREADGROUP ... ">" (blocking in slices of
//   at most 100 ms on its own connection so that Close wakes it). Records are returned only as
//   one contiguous run starting at `from`. If entries at `from` were acknowledged (or trimmed)
//   by another consumer (it committed them to the store after this loader read the store's
//   offset), Read answers Aborted so the loader resumes from the store's offset. A `from` below
//   the oldest retained entry is InvalidArgument when this process's own Commit trimmed it.
//   Commit(n): XACK of the offsets below n, then XTRIM MINID to the lowest point every group on
//   the stream still needs (this group: n; any other group: its oldest pending entry, else its
//   last delivered + 1), so Redis holds the backlog, not history.
// After a restart, committed_offset is the group's oldest unacknowledged entry; records not
// acknowledged are read again, which the store's committed offset makes harmless.
//
// Lost entries: a Redis restarted from an AOF without its last second ends the stream below
// offsets already handed out. Offsets are never reused: the writer, on reconnecting, and the
// loader, through AdvanceTo(the store's offset), move the stream's top back up (XSETID), so
// new entries get new offsets; the lost entries the loader had not loaded yet are lost (the
// window `appendfsync everysec` leaves; --redis-wait with a replica closes it). The loader
// passes over them: a Read whose `from` is missing from the stream while later entries exist
// answers Aborted once (the loader re-reads the store's offset: another consumer may have
// loaded them); asked again from the same offset, holding the lease, it logs the offsets lost
// and returns the entries after them. Such a restart, or a replica that a full resync gave an
// older data set and that is then promoted (no reconnect), also moves the group's last
// delivered entry back: a Read that finds nothing at `from` follows it back first. A writer
// whose EXEC returns offsets below ones already handed out (the stream went back under a live
// connection) answers those appends Unavailable and moves the top back up.
// Deleting the stream key resets offsets to 0: do not, while a store holds a committed offset.
// Concurrency: thread-safe as buffer.h requires. One mutex guards the counters; the writer, the
// reader and the heartbeat each own their connection (the reader's under read_mu_).
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
// Errors show the URL with its password as "***".
Result<RedisUrl> ParseRedisUrl(const std::string& url);
// `url` with the password of its user info replaced by "***".
std::string RedactedRedisUrl(const std::string& url);

struct RedisStreamsOptions {
  std::string url;                       // redis://[:password@]host:port[/db]
  std::string stream = "sluice:events";  // the stream key
  std::string group = "sluice";          // the consumer group the loader reads through
  std::string consumer = "sluice";       // this process's consumer name in `group`
  // The lease's TTL: how long after a consumer stops renewing (killed) another may take over
  // the stream and claim its pending entries.
  std::chrono::milliseconds claim_after{30'000};
  int wait_replicas = 0;                         // > 0: WAIT for that many replicas before OK
  std::chrono::milliseconds wait_timeout{1000};  // WAIT's timeout
  uint64_t max_bytes = 0;                        // cap on uncommitted records; 0 = none (maxmemory)
  std::chrono::milliseconds timeout{2000};       // connect and per-command timeout
  std::chrono::milliseconds max_backoff{2000};   // reconnect backoff cap
};

// Owns a redisContext; frees it on destruction.
struct RedisContextDeleter {
  void operator()(redisContext* c) const;
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

class RedisStreams final : public Buffer {
 public:
  static constexpr uint64_t kRecordOverheadBytes = 8;

  // Connects (Unavailable when Redis does not answer), creates the group if missing (at the
  // stream's start), reads the stream's state and starts the writer thread.
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
  Status AdvanceTo(uint64_t offset) override;

  // "" while the last command on the writer's connection succeeded, else what failed.
  std::string LastError() const override;
  // Whether this process holds the stream's lease (is its loader).
  bool HoldsLease() const;

 private:
  struct Pending {
    std::vector<std::string> records;
    AppendCallback done;
    uint64_t bytes = 0;
    Status result;        // set by WriteMany
    bool stored = false;  // EXEC answered with every entry's ID
  };
  static constexpr size_t kMaxPipelined = 256;              // appends per pipeline
  static constexpr uint64_t kMaxPipelinedBytes = 16 << 20;  // bytes per pipeline
  // The stream and group as Redis reports them.
  struct RemoteState {
    uint64_t next = 0;                   // last-generated ID's offset + 1
    uint64_t first = 0;                  // the first retained entry's offset (next when empty)
    uint64_t delivered = 0;              // our group's last delivered offset + 1
    uint64_t group_point = 0;            // our group's oldest pending entry, else `delivered`
    uint64_t others_point = UINT64_MAX;  // the lowest point any other group still needs
  };
  static constexpr uint32_t kUnknownSize = UINT32_MAX;  // appended by another process

  RedisStreams(RedisStreamsOptions options, RedisUrl url);
  Result<RedisContextPtr> Connect() const;
  Result<RemoteState> ReadRemote(redisContext* c) const;
  Status EnsureGroup(redisContext* c) const;  // XGROUP CREATE … 0 MKSTREAM unless it exists
  // Under read_mu_: `st`, unless it says the group is missing: then recreates it (OK).
  Status Regroup(redisContext* c, Status st);
  // Folds `r` into the counters (offsets only move forward).
  void ApplyRemote(const RemoteState& r);
  // On the writer thread: connects, honouring the backoff; after a reconnect, moves the
  // stream's top up to next_offset_ if Redis lost entries (SetTop).
  Status EnsureWriterConn();
  Status SetTop(redisContext* c, uint64_t next);  // XSETID so that 0-* gives offset `next`
  // On the writer thread: all of `batch` in one pipeline; sets each one's result.
  void WriteMany(std::vector<Pending>& batch);
  void WriterLoop();
  void HeartbeatLoop();
  // Takes or renews the lease on `c`. 0: another consumer holds it; 1: renewed; 2: taken.
  Result<int> TryLease(redisContext* c) const;
  // Under read_mu_: the reader's connection, connected if needed.
  Result<redisContext*> ReadConn();
  // Under read_mu_: one attempt at the records from `from` (XAUTOCLAIM or XREADGROUP). Sets
  // missing_at_from_ when it found entries past `from` but none at it.
  Status ReadOnce(uint64_t from, size_t max_records, size_t max_bytes,
                  std::chrono::milliseconds block, std::vector<Record>* out);
  // Under read_mu_, holding the lease, `from` not found: the offset where the stream resumes
  // when [from, it) are gone (lost, see "Lost entries"), or `from` when the entry is there. The
  // first time for a given `from`: Aborted, so the loader re-reads the store's offset (another
  // consumer may have loaded and trimmed them); asked again for the same `from`, they are lost.
  Result<uint64_t> LostRunEnd(redisContext* c, uint64_t from);
  void NoteSizes(const std::vector<Record>& records);
  void SetError(const Status& st);

  const RedisStreamsOptions options_;
  const RedisUrl url_;
  const std::string lease_key_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::deque<Pending> queue_;
  uint64_t next_offset_ = 0;
  uint64_t committed_offset_ = 0;  // our group: every offset below is acknowledged
  uint64_t first_offset_ = 0;      // the first retained entry
  std::deque<uint32_t> sizes_;     // payload bytes of [committed_offset_, next_offset_), or unknown
  uint64_t known_bytes_ = 0;       // sum of the known sizes_ + overhead for each
  uint64_t unknown_ = 0;           // entries of sizes_ that are kUnknownSize
  uint64_t seen_bytes_ = 0, seen_records_ = 0;  // for the mean size of unknown entries
  uint64_t pending_bytes_ = 0;                  // reserved by queued appends
  std::string last_error_;
  bool lease_held_ = false;
  bool lease_lost_ = false;  // the heartbeat found another consumer holding it

  RedisContextPtr writer_conn_;                           // writer thread only
  std::chrono::steady_clock::time_point next_connect_{};  // writer thread only
  std::chrono::milliseconds backoff_{0};                  // writer thread only

  std::mutex read_mu_;
  RedisContextPtr read_conn_;  // under read_mu_
  uint64_t delivered_ = 0;     // under read_mu_: the group's next ">" entry, as last seen
  uint64_t acked_ = 0;         // under read_mu_: every offset below is XACKed
  bool stood_by_ = false;      // under read_mu_: another consumer held the lease when we asked
  // Lost entries (LostRunEnd), under read_mu_:
  bool missing_at_from_ = false;      // ReadOnce found entries past `from` but none at it
  uint64_t lost_probe_ = UINT64_MAX;  // the `from` LostRunEnd last answered Aborted for

  std::mutex close_mu_;                   // serializes Close's joins
  std::condition_variable heartbeat_cv_;  // with mu_: wakes the heartbeat on Close
  std::thread writer_;
  std::thread heartbeat_;
};

}  // namespace sluice::buffer
