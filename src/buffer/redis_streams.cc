#include "buffer/redis_streams.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace sluice::buffer {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

constexpr std::chrono::milliseconds kReadSlice{100};

std::string IdOf(uint64_t offset) { return "0-" + std::to_string(offset + 1); }

// Parses "0-K" (K >= 1) into the offset K-1; any other ID was not written by RedisStreams.
Result<uint64_t> OffsetOf(std::string_view id) {
  if (id.size() < 3 || id.substr(0, 2) != "0-") {
    return Status::Corruption("stream entry ID " + std::string(id) +
                              " was not written by sluice (want 0-N)");
  }
  uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(id.data() + 2, id.data() + id.size(), seq);
  if (ec != std::errc() || ptr != id.data() + id.size() || seq == 0) {
    return Status::Corruption("bad stream entry ID " + std::string(id));
  }
  return seq - 1;
}

std::string_view Str(const redisReply* r) { return {r->str, r->len}; }

// Maps a Redis error reply to a Status: OOM (maxmemory reached under noeviction) is
// ResourceExhausted, authentication errors Unauthenticated, the rest Internal.
Status ErrorStatus(std::string_view what, std::string_view msg) {
  std::string m = std::string(what) + ": " + std::string(msg);
  if (msg.substr(0, 3) == "OOM") return Status::ResourceExhausted(std::move(m));
  if (msg.substr(0, 6) == "NOAUTH" || msg.substr(0, 9) == "WRONGPASS") {
    return Status::Unauthenticated(std::move(m));
  }
  return Status::Internal(std::move(m));
}

Status ConnectionStatus(const redisContext* c, std::string_view what) {
  return Status::Unavailable("redis " + std::string(what) + ": " +
                             (c->err ? std::string(c->errstr) : std::string("no reply")));
}

// Runs one command; a nullptr reply (connection error) is Unavailable, an error reply mapped
// by ErrorStatus. The caller drops the connection when the result is Unavailable.
Result<ReplyPtr> Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), argvlen.data())));
  if (!reply) return ConnectionStatus(c, args[0]);
  if (reply->type == REDIS_REPLY_ERROR) return ErrorStatus(args[0], Str(reply.get()));
  return reply;
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// One stream entry [id, [field, value, ...]] -> Record (field "r").
Result<Record> EntryRecord(const redisReply* e) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
      e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY) {
    return Status::Corruption("unexpected stream entry shape");
  }
  auto offset = OffsetOf(Str(e->element[0]));
  if (!offset.ok()) return offset.status();
  const redisReply* fields = e->element[1];
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    if (Str(fields->element[i]) == "r") {
      return Record{*offset, std::string(Str(fields->element[i + 1]))};
    }
  }
  return Status::Corruption("stream entry " + std::string(Str(e->element[0])) +
                            " has no field r");
}

}  // namespace

void RedisContextDeleter::operator()(redisContext* c) const { redisFree(c); }

Result<RedisUrl> ParseRedisUrl(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status::InvalidArgument("redis URL must start with redis://: " + url);
  }
  std::string rest = url.substr(kScheme.size());
  RedisUrl out;
  if (size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument("redis URL user info must be [user]:password: " + url);
    }
    out.user = userinfo.substr(0, colon);
    out.password = userinfo.substr(colon + 1);
  }
  if (size_t slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), out.db);
      if (ec != std::errc() || ptr != db.data() + db.size() || out.db < 0) {
        return Status::InvalidArgument("bad redis db number in " + url);
      }
    }
  }
  if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || out.port <= 0 ||
        out.port > 65535) {
      return Status::InvalidArgument("bad redis port in " + url);
    }
  }
  if (rest.empty()) return Status::InvalidArgument("redis URL has no host: " + url);
  out.host = rest;
  return out;
}

RedisStreams::RedisStreams(RedisStreamsOptions options, RedisUrl url)
    : options_(std::move(options)), url_(std::move(url)) {}

Result<std::unique_ptr<RedisStreams>> RedisStreams::Open(const RedisStreamsOptions& options) {
  auto url = ParseRedisUrl(options.url);
  if (!url.ok()) return url.status();
  if (options.stream.empty()) return Status::InvalidArgument("empty redis stream name");
  std::unique_ptr<RedisStreams> b(new RedisStreams(options, *url));
  auto conn = b->Connect();
  if (!conn.ok()) return conn.status();
  if (Status s = b->LoadState(conn->get()); !s.ok()) return s;
  b->writer_conn_ = std::move(*conn);
  b->writer_ = std::thread([raw = b.get()] { raw->WriterLoop(); });
  return b;
}

RedisStreams::~RedisStreams() { Close(); }

Result<RedisContextPtr> RedisStreams::Connect() const {
  const timeval tv = ToTimeval(options_.timeout);
  RedisContextPtr c(redisConnectWithTimeout(url_.host.c_str(), url_.port, tv));
  const std::string where = url_.host + ":" + std::to_string(url_.port);
  if (!c) return Status::Unavailable("redis " + where + ": cannot allocate a context");
  if (c->err) return Status::Unavailable("redis " + where + ": " + c->errstr);
  if (redisSetTimeout(c.get(), tv) != REDIS_OK) return ConnectionStatus(c.get(), "timeout");
  if (!url_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(url_.password);
    if (auto r = Command(c.get(), auth); !r.ok()) return r.status();
  }
  if (url_.db != 0) {
    if (auto r = Command(c.get(), {"SELECT", std::to_string(url_.db)}); !r.ok()) {
      return r.status();
    }
  }
  return c;
}

Status RedisStreams::LoadState(redisContext* c) {
  const std::string& key = options_.stream;
  uint64_t next = 0;
  auto info = Command(c, {"XINFO", "STREAM", key});
  if (!info.ok()) {
    // A missing key is a new, empty stream; anything else is an error.
    if (info.status().message().find("no such key") == std::string::npos) return info.status();
  } else {
    const redisReply* r = info->get();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      if (Str(r->element[i]) != "last-generated-id") continue;
      std::string_view last = Str(r->element[i + 1]);
      if (last != "0-0") {
        auto off = OffsetOf(last);
        if (!off.ok()) return off.status();
        next = *off + 1;
      }
    }
  }
  std::deque<uint64_t> sizes;
  uint64_t first = next;
  bool any = false;
  std::string start = "-";
  for (;;) {
    auto page = Command(c, {"XRANGE", key, start, "+", "COUNT", "1000"});
    if (!page.ok()) return page.status();
    const redisReply* r = page->get();
    if (r->elements == 0) break;
    for (size_t i = 0; i < r->elements; ++i) {
      auto rec = EntryRecord(r->element[i]);
      if (!rec.ok()) return rec.status();
      if (!any) first = rec->offset;
      any = true;
      sizes.push_back(rec->payload.size());
      start = "(" + IdOf(rec->offset);
    }
  }
  if (first + sizes.size() != next) {
    return Status::Corruption("stream " + key + " has gaps: " + std::to_string(sizes.size()) +
                              " entries from offset " + std::to_string(first) + " to " +
                              std::to_string(next));
  }
  std::lock_guard lock(mu_);
  next_offset_ = next;
  committed_offset_ = first;
  sizes_ = std::move(sizes);
  used_bytes_ = 0;
  for (uint64_t s : sizes_) used_bytes_ += s + kRecordOverheadBytes;
  return Status::OK();
}

void RedisStreams::Append(std::vector<std::string> records, AppendCallback done) {
  uint64_t bytes = 0;
  for (const std::string& r : records) bytes += r.size() + kRecordOverheadBytes;
  Status refusal;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      refusal = Status::Unavailable("buffer is closed");
    } else if (used_bytes_ + pending_bytes_ + bytes > options_.max_bytes) {
      refusal = Status::ResourceExhausted("redis buffer cap of " +
                                          std::to_string(options_.max_bytes) + " bytes reached");
    } else {
      pending_bytes_ += bytes;
      queue_.push_back(Pending{std::move(records), std::move(done), bytes});
    }
  }
  if (!refusal.ok()) {
    done(std::move(refusal));  // inline, outside the lock
    return;
  }
  cv_.notify_all();
}

void RedisStreams::WriterLoop() {
  for (;;) {
    Pending p;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) break;  // closed and drained
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    Status s = WriteOne(p);
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      pending_bytes_ -= p.bytes;
    }
    p.done(std::move(s));
  }
  writer_conn_.reset();
}

Status RedisStreams::WriteOne(Pending& p) {
  if (!writer_conn_) {
    auto conn = Connect();
    if (!conn.ok()) return conn.status();
    writer_conn_ = std::move(*conn);
    writer_resync_ = true;
  }
  if (writer_resync_) {
    if (Status s = LoadState(writer_conn_.get()); !s.ok()) {
      if (s.code() == StatusCode::kUnavailable) writer_conn_.reset();
      return s;
    }
    writer_resync_ = false;
  }
  if (p.records.empty()) return Status::OK();
  uint64_t base;
  {
    std::lock_guard lock(mu_);
    base = next_offset_;
  }
  redisContext* c = writer_conn_.get();
  const std::string& key = options_.stream;
  // MULTI, one XADD per record, EXEC: appended to hiredis' output buffer, sent in one write.
  redisAppendCommand(c, "MULTI");
  for (size_t i = 0; i < p.records.size(); ++i) {
    const std::string id = IdOf(base + i);
    const char* argv[] = {"XADD", key.data(), id.data(), "r", p.records[i].data()};
    const size_t argvlen[] = {4, key.size(), id.size(), 1, p.records[i].size()};
    redisAppendCommandArgv(c, 5, argv, argvlen);
  }
  redisAppendCommand(c, "EXEC");
  Status first_error;
  ReplyPtr exec;
  for (size_t i = 0; i < p.records.size() + 2; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) {
      Status s = ConnectionStatus(c, "XADD");
      writer_conn_.reset();  // EXEC may or may not have run: re-read the stream next time
      writer_resync_ = true;
      return s;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
      first_error = ErrorStatus(i == 0 ? "MULTI" : "XADD", Str(reply.get()));
    }
    if (i == p.records.size() + 1) exec = std::move(reply);
  }
  // A refused queued command (OOM) aborts EXEC: nothing of this call is stored.
  if (!first_error.ok()) return first_error;
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != p.records.size()) {
    writer_resync_ = true;
    return Status::Internal("redis EXEC: unexpected reply");
  }
  for (size_t i = 0; i < exec->elements; ++i) {
    if (exec->element[i]->type == REDIS_REPLY_ERROR) {
      // Typically another writer on the same stream: some XADDs may have landed.
      writer_resync_ = true;
      return ErrorStatus("XADD", Str(exec->element[i]));
    }
  }
  std::lock_guard lock(mu_);
  next_offset_ = base + p.records.size();
  for (const std::string& r : p.records) sizes_.push_back(r.size());
  used_bytes_ += p.bytes;
  pending_bytes_ -= p.bytes;
  return Status::OK();
}

Result<std::vector<Record>> RedisStreams::Read(uint64_t from, size_t max_records,
                                               size_t max_bytes,
                                               std::chrono::milliseconds wait) {
  std::lock_guard read_lock(read_mu_);
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Unavailable("buffer is closed");
    if (from < committed_offset_) {
      return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                     " below the oldest retained offset " +
                                     std::to_string(committed_offset_));
    }
    if (from > next_offset_) {
      return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                     " beyond the next offset " + std::to_string(next_offset_));
    }
  }
  std::vector<Record> out;
  if (max_records == 0) return out;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const std::string after = "0-" + std::to_string(from);  // IDs above it: offsets >= from
  for (;;) {
    if (!read_conn_) {
      auto conn = Connect();
      if (!conn.ok()) return conn.status();
      read_conn_ = std::move(*conn);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::vector<std::string> args = {"XREAD", "COUNT", std::to_string(max_records)};
    if (left.count() > 0) {
      args.push_back("BLOCK");
      args.push_back(std::to_string(std::min(left, kReadSlice).count()));
    }
    args.insert(args.end(), {"STREAMS", options_.stream, after});
    auto reply = Command(read_conn_.get(), args);
    if (!reply.ok()) {
      if (reply.status().code() == StatusCode::kUnavailable) read_conn_.reset();
      return reply.status();
    }
    uint64_t next;
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::Unavailable("buffer is closed");
      next = next_offset_;
    }
    const redisReply* r = reply->get();
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
      const redisReply* entries = r->element[0]->element[1];
      size_t bytes = 0;
      for (size_t i = 0; i < entries->elements; ++i) {
        auto rec = EntryRecord(entries->element[i]);
        if (!rec.ok()) return rec.status();
        // EXEC ran but the writer has not acknowledged yet: not visible until it has.
        if (rec->offset >= next) break;
        if (!out.empty() && bytes + rec->payload.size() > max_bytes) break;
        bytes += rec->payload.size();
        out.push_back(std::move(*rec));
      }
    }
    if (!out.empty() || std::chrono::steady_clock::now() >= deadline) return out;
    if (next > from) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Status RedisStreams::Commit(uint64_t offset) {
  std::lock_guard read_lock(read_mu_);
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Unavailable("buffer is closed");
    if (offset > next_offset_) {
      return Status::InvalidArgument("commit offset " + std::to_string(offset) +
                                     " is beyond the next offset " +
                                     std::to_string(next_offset_));
    }
    if (offset <= committed_offset_) return Status::OK();
  }
  if (!read_conn_) {
    auto conn = Connect();
    if (!conn.ok()) return conn.status();
    read_conn_ = std::move(*conn);
  }
  auto reply = Command(read_conn_.get(), {"XTRIM", options_.stream, "MINID", IdOf(offset)});
  if (!reply.ok()) {
    if (reply.status().code() == StatusCode::kUnavailable) read_conn_.reset();
    return reply.status();
  }
  std::lock_guard lock(mu_);
  while (committed_offset_ < offset && !sizes_.empty()) {
    used_bytes_ -= sizes_.front() + kRecordOverheadBytes;
    sizes_.pop_front();
    ++committed_offset_;
  }
  return Status::OK();
}

BufferStats RedisStreams::Stats() const {
  std::lock_guard lock(mu_);
  BufferStats s;
  s.next_offset = next_offset_;
  s.committed_offset = committed_offset_;
  s.depth_records = next_offset_ - committed_offset_;
  s.depth_bytes = used_bytes_;
  s.used_bytes = used_bytes_;
  s.capacity_bytes = options_.max_bytes;
  return s;
}

void RedisStreams::Close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  // From an append callback (the writer thread itself) the queue drains after we return.
  if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
  std::lock_guard read_lock(read_mu_);  // a waiting Read returns within one slice
  read_conn_.reset();
}

}  // namespace sluice::buffer
