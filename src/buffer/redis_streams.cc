#include "buffer/redis_streams.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
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
  return Status::Corruption("stream entry " + std::string(Str(e->element[0])) + " has no field r");
}

}  // namespace

void RedisContextDeleter::operator()(redisContext* c) const { redisFree(c); }

// `url` with its password replaced by "***", for error messages.
std::string RedactedRedisUrl(const std::string& url) {
  const size_t at = url.rfind('@');
  const size_t start = url.find("://");
  if (at == std::string::npos || start == std::string::npos || at < start) return url;
  const size_t colon = url.find(':', start + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Result<RedisUrl> ParseRedisUrl(const std::string& raw_url) {
  constexpr std::string_view kScheme = "redis://";
  const std::string& url = raw_url;
  const std::string shown = RedactedRedisUrl(raw_url);
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status::InvalidArgument("redis URL must start with redis://: " + shown);
  }
  std::string rest = url.substr(kScheme.size());
  RedisUrl out;
  if (size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument("redis URL user info must be [user]:password: " + shown);
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
        return Status::InvalidArgument("bad redis db number in " + shown);
      }
    }
  }
  if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || out.port <= 0 ||
        out.port > 65535) {
      return Status::InvalidArgument("bad redis port in " + shown);
    }
  }
  if (rest.empty()) return Status::InvalidArgument("redis URL has no host: " + shown);
  out.host = rest;
  return out;
}

namespace {

// Takes the lease when free, renews it when ours. KEYS[1] lease key; ARGV consumer, TTL ms.
constexpr const char* kLeaseScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end "
    "return 0";

// A flat [name, value, ...] reply's value for `name`, or nullptr.
const redisReply* Field(const redisReply* r, std::string_view name) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return nullptr;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (r->element[i]->type == REDIS_REPLY_STRING && Str(r->element[i]) == name) {
      return r->element[i + 1];
    }
  }
  return nullptr;
}

// "0-0" (nothing yet) -> 0; "0-K" -> K (the offset after the entry).
Result<uint64_t> OffsetAfter(std::string_view id) {
  if (id == "0-0") return uint64_t{0};
  auto off = OffsetOf(id);
  if (!off.ok()) return off.status();
  return *off + 1;
}

// Appends `entries` (an array of stream entries) to `out` while they continue the run that
// starts at `from` and fit `max_records`/`max_bytes` (always one). Returns the highest offset
// seen + 1 (0 when none), whether taken or not.
Result<uint64_t> TakeRun(const redisReply* entries, uint64_t from, size_t max_records,
                         size_t max_bytes, std::vector<Record>* out, size_t* bytes) {
  uint64_t seen = 0;
  bool broken = false;
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* e = entries->element[i];
    if (e->type == REDIS_REPLY_NIL) continue;  // deleted entry (XDEL): not ours to report
    auto rec = EntryRecord(e);
    if (!rec.ok()) return rec.status();
    seen = std::max(seen, rec->offset + 1);
    if (broken || rec->offset < from) continue;
    const uint64_t want = out->empty() ? from : out->back().offset + 1;
    if (rec->offset != want || out->size() >= max_records ||
        (!out->empty() && *bytes + rec->payload.size() > max_bytes)) {
      broken = true;
      continue;
    }
    *bytes += rec->payload.size();
    out->push_back(std::move(*rec));
  }
  return seen;
}

}  // namespace

RedisStreams::RedisStreams(RedisStreamsOptions options, RedisUrl url)
    : options_(std::move(options)), url_(std::move(url)), lease_key_(options_.stream + ":lease") {}

Result<std::unique_ptr<RedisStreams>> RedisStreams::Open(const RedisStreamsOptions& options) {
  auto url = ParseRedisUrl(options.url);
  if (!url.ok()) return url.status();
  if (options.stream.empty()) return Status::InvalidArgument("empty redis stream name");
  if (options.group.empty() || options.consumer.empty()) {
    return Status::InvalidArgument("redis consumer group and consumer names must not be empty");
  }
  if (options.claim_after < std::chrono::milliseconds(300)) {
    return Status::InvalidArgument("redis claim-after must be at least 300ms");
  }
  if (options.wait_replicas < 0) return Status::InvalidArgument("redis wait must be >= 0");
  std::unique_ptr<RedisStreams> b(new RedisStreams(options, *url));
  auto conn = b->Connect();
  if (!conn.ok()) return conn.status();
  SLUICE_RETURN_IF_ERROR(b->EnsureGroup(conn->get()));
  auto remote = b->ReadRemote(conn->get());
  if (!remote.ok()) return remote.status();
  b->ApplyRemote(*remote);  // from zero: takes the stream's and the group's state as they are
  // Sizes of the retained backlog, once (XRANGE in pages): exact Stats from the start.
  std::string start =
      "(" + (b->committed_offset_ == 0 ? std::string("0-0") : IdOf(b->committed_offset_ - 1));
  for (;;) {
    auto page = Command(conn->get(), {"XRANGE", options.stream, start, "+", "COUNT", "1000"});
    if (!page.ok()) return page.status();
    std::vector<Record> records;
    for (size_t i = 0; i < (*page)->elements; ++i) {
      auto rec = EntryRecord((*page)->element[i]);
      if (!rec.ok()) return rec.status();
      start = "(" + IdOf(rec->offset);
      records.push_back(std::move(*rec));
    }
    if (records.empty()) break;
    b->NoteSizes(records);
  }
  {
    std::lock_guard read_lock(b->read_mu_);
    b->delivered_ = remote->delivered;
    b->acked_ = remote->group_point;
  }
  b->writer_conn_ = std::move(*conn);
  b->writer_ = std::thread([raw = b.get()] { raw->WriterLoop(); });
  b->heartbeat_ = std::thread([raw = b.get()] { raw->HeartbeatLoop(); });
  return b;
}

RedisStreams::~RedisStreams() { Close(); }

Status RedisStreams::EnsureGroup(redisContext* c) const {
  // The group starts at the stream's beginning, so nothing already in it is skipped.
  auto created = Command(c, {"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (!created.ok() && created.status().message().find("BUSYGROUP") == std::string::npos) {
    return created.status().WithContext("creating consumer group " + options_.group);
  }
  return Status::OK();
}

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

Result<RedisStreams::RemoteState> RedisStreams::ReadRemote(redisContext* c) const {
  const std::string& key = options_.stream;
  RemoteState out;
  auto info = Command(c, {"XINFO", "STREAM", key});
  if (!info.ok()) {
    // A missing key is a new, empty stream (someone deleted it: offsets restart at 0).
    if (info.status().message().find("no such key") == std::string::npos) return info.status();
    return out;
  }
  if (const redisReply* last = Field(info->get(), "last-generated-id")) {
    SLUICE_ASSIGN_OR_RETURN(out.next, OffsetAfter(Str(last)));
  }
  out.first = out.next;
  const redisReply* first = Field(info->get(), "first-entry");
  if (first != nullptr && first->type == REDIS_REPLY_ARRAY && first->elements == 2) {
    SLUICE_ASSIGN_OR_RETURN(out.first, OffsetOf(Str(first->element[0])));
  }
  auto groups = Command(c, {"XINFO", "GROUPS", key});
  if (!groups.ok()) return groups.status();
  for (size_t i = 0; i < (*groups)->elements; ++i) {
    const redisReply* g = (*groups)->element[i];
    const redisReply* name = Field(g, "name");
    const redisReply* pending = Field(g, "pending");
    const redisReply* last = Field(g, "last-delivered-id");
    if (name == nullptr || pending == nullptr || last == nullptr) {
      return Status::Internal("XINFO GROUPS: unexpected reply shape");
    }
    SLUICE_ASSIGN_OR_RETURN(uint64_t delivered, OffsetAfter(Str(last)));
    uint64_t point = delivered;
    if (pending->integer > 0) {
      auto summary = Command(c, {"XPENDING", key, std::string(Str(name))});
      if (!summary.ok()) return summary.status();
      if ((*summary)->elements >= 2 && (*summary)->element[1]->type == REDIS_REPLY_STRING) {
        SLUICE_ASSIGN_OR_RETURN(point, OffsetOf(Str((*summary)->element[1])));
      }
    }
    if (Str(name) == options_.group) {
      out.delivered = delivered;
      out.group_point = point;
    } else {
      out.others_point = std::min(out.others_point, point);
    }
  }
  return out;
}

void RedisStreams::ApplyRemote(const RemoteState& r) {
  std::lock_guard lock(mu_);
  first_offset_ = std::max(first_offset_, r.first);
  uint64_t committed = std::max({committed_offset_, r.group_point, r.first});
  next_offset_ = std::max(next_offset_, r.next);
  committed = std::min(committed, next_offset_);
  // O(entries popped), however far `committed` jumps (a store far ahead of the stream).
  for (uint64_t n = committed > committed_offset_ ? committed - committed_offset_ : 0;
       n > 0 && !sizes_.empty(); --n) {
    if (sizes_.front() == kUnknownSize) {
      --unknown_;
    } else {
      known_bytes_ -= sizes_.front() + kRecordOverheadBytes;
    }
    sizes_.pop_front();
  }
  committed_offset_ = std::max(committed_offset_, committed);
  while (committed_offset_ + sizes_.size() < next_offset_) {
    sizes_.push_back(kUnknownSize);
    ++unknown_;
  }
}

void RedisStreams::NoteSizes(const std::vector<Record>& records) {
  std::lock_guard lock(mu_);
  for (const Record& r : records) {
    if (r.offset + 1 > next_offset_) next_offset_ = r.offset + 1;
  }
  while (committed_offset_ + sizes_.size() < next_offset_) {
    sizes_.push_back(kUnknownSize);
    ++unknown_;
  }
  for (const Record& r : records) {
    if (r.offset < committed_offset_) continue;
    uint32_t& size = sizes_[r.offset - committed_offset_];
    if (size != kUnknownSize) continue;
    size = static_cast<uint32_t>(r.payload.size());
    --unknown_;
    known_bytes_ += r.payload.size() + kRecordOverheadBytes;
    seen_bytes_ += r.payload.size();
    ++seen_records_;
  }
}

void RedisStreams::SetError(const Status& st) {
  std::lock_guard lock(mu_);
  last_error_ = st.ok() ? std::string() : st.ToString();
}

std::string RedisStreams::LastError() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

bool RedisStreams::HoldsLease() const {
  std::lock_guard lock(mu_);
  return lease_held_;
}

void RedisStreams::Append(std::vector<std::string> records, AppendCallback done) {
  uint64_t bytes = 0;
  for (const std::string& r : records) bytes += r.size() + kRecordOverheadBytes;
  Status refusal;
  {
    std::lock_guard lock(mu_);
    const uint64_t mean = seen_records_ == 0 ? 0 : seen_bytes_ / seen_records_;
    const uint64_t used = known_bytes_ + unknown_ * (mean + kRecordOverheadBytes);
    if (closed_) {
      refusal = Status::Unavailable("buffer is closed");
    } else if (options_.max_bytes != 0 && used + pending_bytes_ + bytes > options_.max_bytes) {
      refusal = Status::ResourceExhausted("redis buffer cap of " +
                                          std::to_string(options_.max_bytes) + " bytes reached");
    } else {
      pending_bytes_ += bytes;
      queue_.push_back(Pending{std::move(records), std::move(done), bytes, Status::OK(), false});
    }
  }
  if (!refusal.ok()) {
    done(std::move(refusal));  // inline, outside the lock
    return;
  }
  cv_.notify_all();
}

void RedisStreams::WriterLoop() {
  auto next_refresh = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    // Every queued append (up to a bound) goes out in one pipeline: group commit.
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_refresh, [&] { return closed_ || !queue_.empty(); });
      if (queue_.empty() && closed_) break;  // closed and drained
      uint64_t bytes = 0;
      while (!queue_.empty() && batch.size() < kMaxPipelined && bytes < kMaxPipelinedBytes) {
        bytes += queue_.front().bytes;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (batch.empty() || std::chrono::steady_clock::now() >= next_refresh) {
      // The backlog as Redis sees it: other writers' entries, another process's commits.
      // Also reconnects (with backoff) while no append comes, so that /readyz recovers.
      next_refresh = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      if (EnsureWriterConn().ok()) {
        auto remote = ReadRemote(writer_conn_.get());
        if (remote.ok()) {
          ApplyRemote(*remote);
        } else if (remote.status().code() == StatusCode::kUnavailable) {
          writer_conn_.reset();
          SetError(remote.status());
        }
      }
    }
    if (batch.empty()) continue;
    WriteMany(batch);
    {
      std::lock_guard lock(mu_);
      for (const Pending& p : batch) pending_bytes_ -= p.bytes;
    }
    for (Pending& p : batch) p.done(std::move(p.result));
  }
  writer_conn_.reset();
}

Status RedisStreams::EnsureWriterConn() {
  if (writer_conn_) return Status::OK();
  const auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) {
    std::string last = LastError();
    return Status::Unavailable("redis " + url_.host + ":" + std::to_string(url_.port) +
                               " is unreachable; retrying the connection (last error: " + last +
                               ")");
  }
  auto conn = Connect();
  if (!conn.ok()) {
    backoff_ = backoff_.count() == 0 ? std::chrono::milliseconds(100)
                                     : std::min(backoff_ * 2, options_.max_backoff);
    next_connect_ = now + backoff_;
    SetError(conn.status());
    return conn.status();
  }
  // A Redis that restarted from an older AOF (or a replica promoted before it had
  // everything) ends the stream below offsets already handed out. Offsets must never be
  // reused — the hot store may hold them — so move the stream's top back up first.
  uint64_t known;
  {
    std::lock_guard lock(mu_);
    known = next_offset_;
  }
  if (known > 0) {
    auto remote = ReadRemote(conn->get());
    if (!remote.ok()) {
      SetError(remote.status());
      return remote.status();
    }
    if (remote->next < known) {
      spdlog::error(
          "redis stream {} on {}:{} ends at offset {} but offsets up to {} were handed "
          "out: Redis lost its last {} entries (acknowledged; those not loaded yet are "
          "lost); new entries continue from offset {}",
          options_.stream, url_.host, url_.port, remote->next, known, known - remote->next, known);
      if (Status st = SetTop(conn->get(), known); !st.ok()) {
        SetError(st);
        return st;
      }
    }
  }
  writer_conn_ = std::move(*conn);
  backoff_ = std::chrono::milliseconds(0);
  SetError(Status::OK());
  return Status::OK();
}

Status RedisStreams::SetTop(redisContext* c, uint64_t next) {
  // The key itself may be gone (an AOF from before it existed): recreate it with the group.
  SLUICE_RETURN_IF_ERROR(EnsureGroup(c));
  auto r = Command(c, {"XSETID", options_.stream, IdOf(next - 1)});
  if (!r.ok()) return r.status().WithContext("XSETID " + options_.stream);
  std::lock_guard lock(mu_);
  next_offset_ = std::max(next_offset_, next);
  return Status::OK();
}

Status RedisStreams::AdvanceTo(uint64_t offset) {
  std::lock_guard read_lock(read_mu_);
  SLUICE_ASSIGN_OR_RETURN(redisContext * c, ReadConn());
  auto remote = ReadRemote(c);
  if (!remote.ok()) {
    if (remote.status().code() == StatusCode::kUnavailable) read_conn_.reset();
    return remote.status();
  }
  ApplyRemote(*remote);
  if (remote->next >= offset) return Status::OK();
  spdlog::error(
      "redis stream {} ends at offset {} but the hot store holds records up to {}: "
      "Redis lost entries the store already has; new entries continue from offset {}",
      options_.stream, remote->next, offset, offset);
  if (Status st = SetTop(c, offset); !st.ok()) {
    if (st.code() == StatusCode::kUnavailable) read_conn_.reset();
    return st;
  }
  // The group moves along: nothing below `offset` is left to deliver.
  auto r = Command(c, {"XGROUP", "SETID", options_.stream, options_.group, IdOf(offset - 1)});
  if (!r.ok()) return r.status();
  delivered_ = std::max(delivered_, offset);
  acked_ = std::max(acked_, offset);
  // Everything below `offset` is the store's: committed, and not tracked here (the gap to the
  // old top may be millions of offsets that do not exist).
  RemoteState at;
  at.next = at.first = at.delivered = at.group_point = offset;
  ApplyRemote(at);
  return Status::OK();
}

void RedisStreams::WriteMany(std::vector<Pending>& batch) {
  if (Status st = EnsureWriterConn(); !st.ok()) {
    for (Pending& p : batch) p.result = st;
    return;
  }
  redisContext* c = writer_conn_.get();
  const std::string& key = options_.stream;
  // Per append: MULTI, one XADD per record, EXEC; then one WAIT for all of them. Everything is
  // appended to hiredis' output buffer, sent in one write and answered in one read.
  size_t replies = 0;
  for (const Pending& p : batch) {
    if (p.records.empty()) continue;
    redisAppendCommand(c, "MULTI");
    for (const std::string& record : p.records) {
      const char* argv[] = {"XADD", key.data(), "0-*", "r", record.data()};
      const size_t argvlen[] = {4, key.size(), 3, 1, record.size()};
      redisAppendCommandArgv(c, 5, argv, argvlen);
    }
    redisAppendCommand(c, "EXEC");
    replies += p.records.size() + 2;
  }
  const bool wait = options_.wait_replicas > 0 && replies > 0;
  if (wait) {
    redisAppendCommand(c, "WAIT %d %lld", options_.wait_replicas,
                       static_cast<long long>(options_.wait_timeout.count()));
  }
  auto next_reply = [&](ReplyPtr* out) -> bool {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) return false;
    out->reset(static_cast<redisReply*>(raw));
    return true;
  };
  uint64_t handed_out;  // every offset below was given to an entry before this call
  {
    std::lock_guard lock(mu_);
    handed_out = next_offset_;
  }
  std::vector<Record> written;
  size_t i = 0;
  for (; i < batch.size(); ++i) {
    Pending& p = batch[i];
    if (p.records.empty()) continue;
    Status first_error;
    ReplyPtr exec;
    bool lost = false;
    for (size_t k = 0; k < p.records.size() + 2; ++k) {
      ReplyPtr reply;
      if (!next_reply(&reply)) {
        lost = true;
        break;
      }
      if (k == p.records.size() + 1) {
        exec = std::move(reply);
      } else if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
        first_error = ErrorStatus(k == 0 ? "MULTI" : "XADD", Str(reply.get()));
      }
    }
    if (lost) break;
    // A refused queued command (OOM) aborts EXEC: nothing of this append is stored.
    if (!first_error.ok()) {
      p.result = first_error;
      continue;
    }
    if (exec->type == REDIS_REPLY_ERROR) {
      p.result = ErrorStatus("EXEC", Str(exec.get()));
      continue;
    }
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != p.records.size()) {
      p.result = Status::Internal("redis EXEC: unexpected reply");
      continue;
    }
    const size_t before = written.size();
    for (size_t k = 0; k < exec->elements && p.result.ok(); ++k) {
      const redisReply* id = exec->element[k];
      // An error: e.g. the stream's top ID has a time part ("*" IDs from another program).
      Result<uint64_t> offset = id->type == REDIS_REPLY_ERROR
                                    ? Result<uint64_t>(ErrorStatus("XADD", Str(id)))
                                    : OffsetOf(Str(id));
      if (!offset.ok()) {
        p.result = offset.status();
        written.resize(before);
        break;
      }
      written.push_back(Record{*offset, std::move(p.records[k])});
    }
    if (p.result.ok()) p.stored = true;
  }
  ReplyPtr waited;
  const bool lost = i < batch.size() || (wait && !next_reply(&waited));
  if (lost) {
    // The connection broke: appends without an answer may or may not have run, so they are
    // UnknownOutcome, never Unavailable (which promises nothing was stored: the router would
    // spill them and they would be stored twice).
    Status lost_conn = ConnectionStatus(c, "XADD");
    Status st = Status::UnknownOutcome(lost_conn.message() + " (sent; the outcome is unknown)");
    writer_conn_.reset();
    SetError(lost_conn);
    for (size_t k = i; k < batch.size(); ++k) batch[k].result = st;
    if (wait) {
      for (Pending& p : batch) {
        if (p.stored) p.result = st;  // not known to be on a replica
      }
    }
  } else {
    SetError(Status::OK());
  }
  // Offsets below ones already handed out: the stream went back without this connection
  // breaking (a replica that a full resync gave an older data set, then promoted; a reconnect
  // is checked in EnsureWriterConn). The hot store may hold those offsets: these appends are
  // not acknowledged (a retry is deduplicated), and the top moves back up for the next ones.
  uint64_t lowest = UINT64_MAX;
  for (const Record& r : written) lowest = std::min(lowest, r.offset);
  if (lowest < handed_out) {
    spdlog::error(
        "redis stream {} on {}:{} went back: an append got offset {} but offsets up to {} were "
        "handed out (the server lost entries); not acknowledged, new entries continue from "
        "offset {}",
        key, url_.host, url_.port, lowest, handed_out, handed_out);
    Status st = Status::Unavailable("redis stream " + key + " went back to offset " +
                                    std::to_string(lowest) + " below offsets already handed out (" +
                                    std::to_string(handed_out) + "): not acknowledged, retry");
    for (Pending& p : batch) {
      if (p.stored) p.result = st;
    }
    if (writer_conn_) {
      if (Status set = SetTop(writer_conn_.get(), handed_out); !set.ok()) {
        writer_conn_.reset();  // EnsureWriterConn checks again on reconnecting
        SetError(set);
      }
    }
  }
  NoteSizes(written);
  if (wait && !lost) {
    const long long got = waited->type == REDIS_REPLY_INTEGER ? waited->integer : -1;
    if (got < options_.wait_replicas) {
      Status st = Status::UnknownOutcome(
          "redis WAIT: " + std::to_string(std::max(got, 0LL)) + " of " +
          std::to_string(options_.wait_replicas) + " replicas acknowledged within " +
          std::to_string(options_.wait_timeout.count()) +
          " ms; the events are on the primary but not acknowledged (a retry is deduplicated)");
      for (Pending& p : batch) {
        if (p.stored) p.result = st;
      }
    }
  }
}

Result<int> RedisStreams::TryLease(redisContext* c) const {
  auto r = Command(c, {"EVAL", kLeaseScript, "1", lease_key_, options_.consumer,
                       std::to_string(options_.claim_after.count())});
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_INTEGER) return Status::Internal("lease script: unexpected reply");
  return static_cast<int>((*r)->integer);
}

void RedisStreams::HeartbeatLoop() {
  RedisContextPtr conn;
  const auto period = options_.claim_after / 3;
  std::unique_lock lock(mu_);
  while (!closed_) {
    heartbeat_cv_.wait_for(lock, period, [&] { return closed_; });
    if (closed_ || !lease_held_) continue;
    lock.unlock();
    if (!conn) {
      auto c = Connect();
      if (c.ok()) conn = std::move(*c);
    }
    Result<int> r = conn ? TryLease(conn.get()) : Result<int>(Status::Unavailable("no connection"));
    if (!r.ok() && r.status().code() == StatusCode::kUnavailable) conn.reset();
    lock.lock();
    // 2: the lease had expired (we could not renew in time): someone may have loaded
    // meanwhile, so this loader must resume from the store's offset as well.
    if (r.ok() && *r != 1 && lease_held_) {
      lease_held_ = false;
      lease_lost_ = true;
    }
  }
  lock.unlock();
  conn.reset();
}

Result<redisContext*> RedisStreams::ReadConn() {
  if (!read_conn_) {
    auto conn = Connect();
    if (!conn.ok()) return conn.status();
    read_conn_ = std::move(*conn);
  }
  return read_conn_.get();
}

Result<std::vector<Record>> RedisStreams::Read(uint64_t from, size_t max_records, size_t max_bytes,
                                               std::chrono::milliseconds wait) {
  std::lock_guard read_lock(read_mu_);
  bool refresh = false;
  bool front_gap = false;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Unavailable("buffer is closed");
    if (lease_lost_) {
      lease_lost_ = false;
      return Status::Aborted("the lease on redis stream " + options_.stream +
                             " lapsed; resuming from the hot store's offset");
    }
    if (from < first_offset_) {
      if (acked_ >= first_offset_) {
        return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                       " below the oldest retained offset " +
                                       std::to_string(first_offset_));
      }
      // Trimmed past what this process acknowledged: another consumer consumed them (and
      // the store has them), so the caller's offset is stale — or, holding the lease, they
      // may be lost (LostRunEnd tells).
      if (!lease_held_) {
        return Status::Aborted("redis stream " + options_.stream + " was trimmed to offset " +
                               std::to_string(first_offset_) +
                               " by another consumer; resuming "
                               "from the hot store's offset");
      }
      front_gap = true;
    }
    refresh = from > next_offset_;
  }
  // Nothing at `from` but entries past it. A server restarted from an older AOF, or a replica
  // given an older data set by a full resync and then promoted, also forgot the group's last
  // deliveries: entries delivered to us since are neither pending (XAUTOCLAIM never finds them)
  // nor new to a `delivered_` past them, so follow the group back and read again (*retry).
  // Else the entries at `from` may be lost: LostRunEnd moves `from` past them (*retry).
  auto pass_lost = [&](bool* retry) -> Status {
    auto conn = ReadConn();
    if (!conn.ok()) return conn.status();
    auto remote = ReadRemote(*conn);
    if (!remote.ok()) return remote.status();
    if (remote->delivered < delivered_) {
      delivered_ = remote->delivered;
      *retry = true;
      return Status::OK();
    }
    auto resume = LostRunEnd(*conn, from);
    if (!resume.ok()) return resume.status();
    *retry = *resume != from;
    from = *resume;
    return Status::OK();
  };
  if (front_gap) {
    bool retry = false;
    if (Status st = pass_lost(&retry); !st.ok()) {
      if (st.code() == StatusCode::kUnavailable) read_conn_.reset();
      return st;
    }
  }
  if (refresh) {  // other writers may have added entries we have not heard of
    auto conn = ReadConn();
    if (!conn.ok()) return conn.status();
    auto remote = ReadRemote(*conn);
    if (!remote.ok()) {
      if (remote.status().code() == StatusCode::kUnavailable) read_conn_.reset();
      return remote.status();
    }
    ApplyRemote(*remote);
    std::lock_guard lock(mu_);
    if (from > next_offset_) {
      return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                     " beyond the next offset " + std::to_string(next_offset_));
    }
  }
  std::vector<Record> out;
  if (max_records == 0) return out;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    missing_at_from_ = false;
    Status st = ReadOnce(from, max_records, max_bytes,
                         left.count() > 0 ? std::min(left, kReadSlice) : left.zero(), &out);
    if (missing_at_from_) {
      bool retry = false;
      if (Status lost = pass_lost(&retry); !lost.ok()) {
        st = lost;
      } else if (retry) {
        continue;
      }
    }
    if (!st.ok()) {
      if (st.code() == StatusCode::kUnavailable) read_conn_.reset();
      return st;
    }
    if (!out.empty()) {
      NoteSizes(out);
      return out;
    }
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::Unavailable("buffer is closed");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (!HoldsLease()) {
        return Status::Unavailable("redis stream " + options_.stream +
                                   " is being loaded by another consumer (lease " + lease_key_ +
                                   "); this loader stands by");
      }
      return out;
    }
  }
}

Status RedisStreams::ReadOnce(uint64_t from, size_t max_records, size_t max_bytes,
                              std::chrono::milliseconds block, std::vector<Record>* out) {
  SLUICE_ASSIGN_OR_RETURN(redisContext * c, ReadConn());
  if (!HoldsLease()) {
    SLUICE_ASSIGN_OR_RETURN(int got, TryLease(c));
    if (got == 0) {
      stood_by_ = true;
      if (block.count() > 0) std::this_thread::sleep_for(block);
      return Status::OK();
    }
    // Ours now: learn where the group is (a previous holder may have moved it).
    SLUICE_ASSIGN_OR_RETURN(RemoteState remote, ReadRemote(c));
    ApplyRemote(remote);
    delivered_ = remote.delivered;
    // XACKs resume at the group's oldest pending entry, not at our own last Commit: a Commit
    // made while standing by (our loader re-reading the store's offset) passed entries the
    // previous holder had stored but not yet acknowledged when it died; acknowledged by no one,
    // they would stay in its pending list for good.
    acked_ = remote.group_point;
    {
      std::lock_guard lock(mu_);
      lease_held_ = true;
      lease_lost_ = false;
      if (got == 2) {
        spdlog::info(
            "redis: consumer {} took the lease on stream {} (group {} delivered up to "
            "offset {})",
            options_.consumer, options_.stream, options_.group, delivered_);
      }
    }
    if (stood_by_) {
      // Another consumer loaded while we stood by: our caller's offset, and the ids it knows
      // are stored, predate its last batches. Entries it committed to the store but did not
      // acknowledge before it died are still pending: claimed from a stale offset they would
      // be loaded twice. The caller must re-read the store first.
      stood_by_ = false;
      return Status::Aborted("took over redis stream " + options_.stream +
                             " from another consumer; resuming from the hot store's offset");
    }
  }
  const std::string& key = options_.stream;
  size_t bytes = 0;
  const size_t count = std::min<size_t>(max_records, 10'000);
  if (from < delivered_) {
    // Delivered before (to us, or to a consumer that is gone) but not acknowledged: take them
    // over. Min idle 0: holding the lease proves no other consumer works on them.
    auto r = Command(c, {"XAUTOCLAIM", key, options_.group, options_.consumer, "0", IdOf(from),
                         "COUNT", std::to_string(count)});
    if (!r.ok()) return Regroup(c, r.status());
    if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements < 2) {
      return Status::Internal("XAUTOCLAIM: unexpected reply shape");
    }
    auto seen = TakeRun((*r)->element[1], from, max_records, max_bytes, out, &bytes);
    if (!seen.ok()) return seen.status();
    if (out->empty()) {
      missing_at_from_ = true;
      return Status::Aborted("redis stream " + key + ": offset " + std::to_string(from) +
                             " was acknowledged by another consumer; resuming from the hot "
                             "store's offset");
    }
    return Status::OK();
  }
  std::vector<std::string> args = {"XREADGROUP",   "GROUP",
                                   options_.group, options_.consumer,
                                   "COUNT",        std::to_string(from - delivered_ + count)};
  if (block.count() > 0) {
    args.push_back("BLOCK");
    args.push_back(std::to_string(block.count()));
  }
  args.insert(args.end(), {"STREAMS", key, ">"});
  // Entries below `from` (the store is ahead of the group, e.g. a recreated group) are passed
  // over, in bounded steps, without waiting again.
  for (;;) {
    args[5] = std::to_string(std::min<uint64_t>(from - delivered_ + count, 100'000));
    auto r = Command(c, args);
    if (!r.ok()) return Regroup(c, r.status());
    if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 1) return Status::OK();  // timeout
    const redisReply* stream = (*r)->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) {
      return Status::Internal("XREADGROUP: unexpected reply shape");
    }
    auto seen = TakeRun(stream->element[1], from, max_records, max_bytes, out, &bytes);
    if (!seen.ok()) return seen.status();
    delivered_ = std::max(delivered_, *seen);
    // Entries past `from` but none at it: a gap (see LostRunEnd).
    missing_at_from_ = out->empty() && *seen > from;
    if (!out->empty() || *seen == 0 || delivered_ > from) return Status::OK();
  }
}

Result<uint64_t> RedisStreams::LostRunEnd(redisContext* c, uint64_t from) {
  // Entries are only ever added at the top, so offsets missing below an entry that exists
  // will never appear.
  auto r = Command(c, {"XRANGE", options_.stream, IdOf(from), "+", "COUNT", "1"});
  if (!r.ok()) return r.status();
  uint64_t resume = 0;
  if ((*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 1) {
    auto rec = EntryRecord((*r)->element[0]);
    if (!rec.ok()) return rec.status();
    resume = rec->offset;
  } else {
    SLUICE_ASSIGN_OR_RETURN(RemoteState remote, ReadRemote(c));
    resume = remote.next;
  }
  if (resume <= from) return from;
  if (lost_probe_ != from) {
    lost_probe_ = from;
    return Status::Aborted("redis stream " + options_.stream + " has no entry at offset " +
                           std::to_string(from) + " (the next is at " + std::to_string(resume) +
                           "): another consumer loaded it, or Redis lost it; resuming from the "
                           "hot store's offset");
  }
  // The store's offset, re-read, is still `from`, and we hold the lease: no one has them.
  spdlog::error(
      "redis stream {}: offsets {} to {} are gone and the hot store does not have them: Redis "
      "lost {} entries (a restart from an AOF without its last writes, or a failover to a "
      "replica without them); loading continues at offset {}",
      options_.stream, from, resume - 1, resume - from, resume);
  return resume;
}

Status RedisStreams::Regroup(redisContext* c, Status st) {
  if (st.message().find("NOGROUP") == std::string::npos) return st;
  // The stream or the group vanished (Redis restarted without them): recreate both; the next
  // Read finds the entries again from the stream's start.
  spdlog::error("redis stream {}: group {} is gone ({}); recreating it", options_.stream,
                options_.group, st.message());
  SLUICE_RETURN_IF_ERROR(EnsureGroup(c));
  delivered_ = 0;
  return Status::OK();
}

Status RedisStreams::Commit(uint64_t offset) {
  std::lock_guard read_lock(read_mu_);
  bool refresh = false;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Unavailable("buffer is closed");
    if (offset <= committed_offset_) return Status::OK();
    refresh = offset > next_offset_;
  }
  SLUICE_ASSIGN_OR_RETURN(redisContext * c, ReadConn());
  auto fail = [&](Status st) {
    if (st.code() == StatusCode::kUnavailable) read_conn_.reset();
    return st;
  };
  if (refresh) {
    auto remote = ReadRemote(c);
    if (!remote.ok()) return fail(remote.status());
    ApplyRemote(*remote);
    std::lock_guard lock(mu_);
    if (offset > next_offset_) {
      return Status::InvalidArgument("commit offset " + std::to_string(offset) +
                                     " is beyond the next offset " + std::to_string(next_offset_));
    }
  }
  // XACK what was delivered below `offset`, in pipelined chunks.
  const uint64_t ack_end = std::min(offset, delivered_);
  size_t commands = 0;
  for (uint64_t at = acked_; at < ack_end;) {
    const uint64_t end = std::min(ack_end, at + 10'000);
    std::vector<std::string> ids;
    ids.reserve(end - at + 3);
    ids.insert(ids.end(), {"XACK", options_.stream, options_.group});
    for (uint64_t o = at; o < end; ++o) ids.push_back(IdOf(o));
    std::vector<const char*> argv;
    std::vector<size_t> argvlen;
    for (const std::string& a : ids) {
      argv.push_back(a.data());
      argvlen.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), argvlen.data());
    ++commands;
    at = end;
  }
  for (size_t i = 0; i < commands; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) return fail(ConnectionStatus(c, "XACK"));
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) return ErrorStatus("XACK", Str(reply.get()));
  }
  acked_ = std::max(acked_, offset);
  // Trim to what every group has consumed.
  auto remote = ReadRemote(c);
  if (!remote.ok()) return fail(remote.status());
  const uint64_t min_id = std::min(offset, remote->others_point);
  if (min_id > remote->first) {
    auto trimmed = Command(c, {"XTRIM", options_.stream, "MINID", IdOf(min_id)});
    if (!trimmed.ok()) return fail(trimmed.status());
    remote->first = min_id;
  }
  remote->group_point = std::max(remote->group_point, offset);
  ApplyRemote(*remote);
  return Status::OK();
}

BufferStats RedisStreams::Stats() const {
  std::lock_guard lock(mu_);
  BufferStats s;
  s.next_offset = next_offset_;
  s.committed_offset = committed_offset_;
  s.depth_records = next_offset_ - committed_offset_;
  const uint64_t mean = seen_records_ == 0 ? 0 : seen_bytes_ / seen_records_;
  s.depth_bytes = known_bytes_ + unknown_ * (mean + kRecordOverheadBytes);
  s.used_bytes = s.depth_bytes;
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
  heartbeat_cv_.notify_all();
  // From an append callback (the writer thread itself) the queue drains after we return.
  if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
  if (heartbeat_.joinable()) heartbeat_.join();
  std::lock_guard read_lock(read_mu_);  // a waiting Read returns within one slice
  bool held;
  {
    std::lock_guard lock(mu_);
    held = lease_held_;
    lease_held_ = false;
  }
  if (held && read_conn_) {
    // Hand the stream over at once rather than after claim_after (best effort).
    static_cast<void>(Command(read_conn_.get(), {"EVAL",
                                                 "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                                 "return redis.call('DEL', KEYS[1]) end return 0",
                                                 "1", lease_key_, options_.consumer}));
  }
  read_conn_.reset();
}

}  // namespace sluice::buffer
