#include "pg/copy.h"

#include <cstring>
#include <limits>
#include <utility>

namespace sluice::pg {
namespace {

constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // + the terminating NUL: 11 bytes
constexpr size_t kSignatureBytes = 11;

uint16_t LoadU16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}
uint32_t LoadU32(const char* p) {
  return (uint32_t{static_cast<uint8_t>(p[0])} << 24) |
         (uint32_t{static_cast<uint8_t>(p[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(p[2])} << 8) | uint32_t{static_cast<uint8_t>(p[3])};
}
uint64_t LoadU64(const char* p) { return (uint64_t{LoadU32(p)} << 32) | LoadU32(p + 4); }

}  // namespace

CopyEncoder::CopyEncoder() {
  buf_.reserve(1 << 20);
  buf_.append(kSignature, kSignatureBytes);
  PutInt32(0);  // flags: no OIDs
  PutInt32(0);  // header extension length
}

void CopyEncoder::PutInt16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  const char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 2);
}

void CopyEncoder::PutInt32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 4);
}

void CopyEncoder::PutInt64(int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  PutInt32(static_cast<int32_t>(static_cast<uint32_t>(u >> 32)));
  PutInt32(static_cast<int32_t>(static_cast<uint32_t>(u)));
}

void CopyEncoder::BeginRow(int16_t fields) { PutInt16(fields); }
void CopyEncoder::AddNull() { PutInt32(-1); }
void CopyEncoder::AddBool(bool v) {
  PutInt32(1);
  buf_.push_back(v ? 1 : 0);
}
void CopyEncoder::AddInt64(int64_t v) {
  PutInt32(8);
  PutInt64(v);
}
void CopyEncoder::AddTimestamp(int64_t unix_us) {
  PutInt32(8);
  PutInt64(unix_us - kPostgresEpochUnixUs);
}
void CopyEncoder::AddText(std::string_view s) {
  SLUICE_CHECK_MSG(s.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                   "a COPY field over 2 GiB");
  PutInt32(static_cast<int32_t>(s.size()));
  buf_.append(s);
}
void CopyEncoder::AddJsonb(std::string_view json) {
  SLUICE_CHECK_MSG(json.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                   "a COPY field over 2 GiB");
  PutInt32(static_cast<int32_t>(json.size() + 1));
  buf_.push_back(1);
  buf_.append(json);
}
void CopyEncoder::AddTrailer() { PutInt16(-1); }

Result<int64_t> DecodeInt64(std::string_view field) {
  if (field.size() != 8) {
    return Status::Corruption("binary COPY: an int8 field of " + std::to_string(field.size()) +
                              " bytes");
  }
  return static_cast<int64_t>(LoadU64(field.data()));
}

Result<bool> DecodeBool(std::string_view field) {
  if (field.size() != 1) {
    return Status::Corruption("binary COPY: a bool field of " + std::to_string(field.size()) +
                              " bytes");
  }
  return field[0] != 0;
}

Result<int64_t> DecodeTimestamp(std::string_view field) {
  if (field.size() != 8) {
    return Status::Corruption("binary COPY: a timestamptz field of " +
                              std::to_string(field.size()) + " bytes");
  }
  return static_cast<int64_t>(LoadU64(field.data())) + kPostgresEpochUnixUs;
}

Result<std::string_view> DecodeJsonb(std::string_view field) {
  if (field.empty() || field[0] != 1) {
    return Status::Corruption("binary COPY: a jsonb field without version byte 1");
  }
  return field.substr(1);
}

void CopyDecoder::Feed(std::string_view chunk) {
  if (cur_.empty()) {
    pending_.clear();
    cur_ = chunk;
    return;
  }
  // A row continues in `chunk`: keep the unconsumed bytes (they may point into the previous
  // chunk, which the caller frees after this call) and append.
  if (!pending_.empty() && cur_.data() >= pending_.data() &&
      cur_.data() < pending_.data() + pending_.size()) {
    pending_.erase(0, static_cast<size_t>(cur_.data() - pending_.data()));
  } else {
    pending_.assign(cur_);
  }
  pending_.append(chunk);
  cur_ = pending_;
}

Result<bool> CopyDecoder::Next(CopyRow* row) {
  if (finished_) return false;
  if (!header_done_) {
    if (cur_.size() < kSignatureBytes + 8) return false;
    if (std::memcmp(cur_.data(), kSignature, kSignatureBytes) != 0) {
      return Status::Corruption("binary COPY: the stream does not start with PGCOPY's signature");
    }
    const uint32_t flags = LoadU32(cur_.data() + kSignatureBytes);
    if ((flags & 0xFFFFu) != 0 || (flags & (1u << 16)) != 0) {  // critical bits, OIDs
      return Status::Corruption("binary COPY: unknown critical header flags " +
                                std::to_string(flags));
    }
    const uint32_t ext = LoadU32(cur_.data() + kSignatureBytes + 4);
    if (cur_.size() < kSignatureBytes + 8 + ext) return false;
    cur_.remove_prefix(kSignatureBytes + 8 + ext);
    header_done_ = true;
  }
  if (cur_.size() < 2) return false;
  const auto count = static_cast<int16_t>(LoadU16(cur_.data()));
  if (count == -1) {
    cur_.remove_prefix(2);
    finished_ = true;
    return false;
  }
  if (count < 0) {
    return Status::Corruption("binary COPY: a row with " + std::to_string(count) + " fields");
  }
  // Check the whole row is here before consuming any of it.
  size_t pos = 2;
  row->fields.resize(static_cast<size_t>(count));
  for (int16_t i = 0; i < count; ++i) {
    if (cur_.size() < pos + 4) return false;
    const auto len = static_cast<int32_t>(LoadU32(cur_.data() + pos));
    pos += 4;
    if (len == -1) {
      row->fields[static_cast<size_t>(i)].reset();
      continue;
    }
    if (len < 0) {
      return Status::Corruption("binary COPY: a field of length " + std::to_string(len));
    }
    if (cur_.size() < pos + static_cast<size_t>(len)) return false;
    row->fields[static_cast<size_t>(i)] = cur_.substr(pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
  }
  cur_.remove_prefix(pos);
  return true;
}

Result<std::unique_ptr<CopyIn>> CopyIn::Start(Connection& conn, std::string_view copy_sql,
                                              size_t flush_bytes) {
  std::string what(copy_sql.substr(0, 120));
  PgResultPtr res(PQexec(conn.get(), std::string(copy_sql).c_str()), &PQclear);
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_IN) {
    return Error(what, res.get(), conn.get());
  }
  return std::unique_ptr<CopyIn>(new CopyIn(conn, std::move(what), flush_bytes));
}

CopyIn::~CopyIn() {
  if (!done_) (void)Abort("the client abandoned the COPY");
}

Status CopyIn::Send() {
  if (enc_.size() == 0) return Status::OK();
  if (PQputCopyData(conn_.get(), enc_.data().data(), static_cast<int>(enc_.size())) != 1) {
    return Error(what_, nullptr, conn_.get());
  }
  enc_.Clear();
  return Status::OK();
}

Result<uint64_t> CopyIn::Finish() {
  enc_.AddTrailer();
  Status sent = Send();
  if (!sent.ok()) {
    (void)Abort(sent.message());
    return sent;
  }
  done_ = true;
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) return Error(what_, nullptr, conn_.get());
  // The COPY's result, then nullptr.
  Status st;
  uint64_t rows = 0;
  while (PGresult* raw = PQgetResult(conn_.get())) {
    PgResultPtr res(raw, &PQclear);
    if (PQresultStatus(raw) == PGRES_COMMAND_OK) {
      rows = Rows(std::move(res)).Affected();
    } else if (st.ok()) {
      st = Error(what_, raw, conn_.get());
    }
  }
  if (!st.ok()) return st;
  return rows;
}

Status CopyIn::Abort(std::string_view why) {
  done_ = true;
  if (PQputCopyEnd(conn_.get(), std::string(why).c_str()) != 1) {
    return Error(what_, nullptr, conn_.get());
  }
  while (PGresult* raw = PQgetResult(conn_.get())) PQclear(raw);
  return Status::OK();
}

Result<std::unique_ptr<CopyOut>> CopyOut::Start(Connection& conn, std::string_view copy_sql) {
  std::string what(copy_sql.substr(0, 120));
  PgResultPtr res(PQexec(conn.get(), std::string(copy_sql).c_str()), &PQclear);
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_OUT) {
    return Error(what, res.get(), conn.get());
  }
  return std::unique_ptr<CopyOut>(new CopyOut(conn, std::move(what)));
}

CopyOut::~CopyOut() {
  if (!done_) {
    conn_.Cancel();
    char* buf = nullptr;
    while (PQgetCopyData(conn_.get(), &buf, 0) > 0) PQfreemem(buf);
    while (PGresult* raw = PQgetResult(conn_.get())) PQclear(raw);
  }
  ReleaseMessage();
}

void CopyOut::ReleaseMessage() {
  if (message_ != nullptr) PQfreemem(message_);
  message_ = nullptr;
}

Status CopyOut::FinalStatus() {
  done_ = true;
  Status st;
  while (PGresult* raw = PQgetResult(conn_.get())) {
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && st.ok()) st = Error(what_, raw, conn_.get());
    PQclear(raw);
  }
  return st;
}

Result<bool> CopyOut::Next(CopyRow* row) {
  if (done_) return false;
  while (true) {
    SLUICE_ASSIGN_OR_RETURN(bool got, dec_.Next(row));
    if (got) return true;
    char* buf = nullptr;
    const int n = PQgetCopyData(conn_.get(), &buf, /*async=*/0);
    if (n > 0) {
      dec_.Feed(std::string_view(buf, static_cast<size_t>(n)));
      ReleaseMessage();  // after Feed, which keeps what it still needs of it
      message_ = buf;
      continue;
    }
    if (n == -1) {  // end of the COPY: its final status says whether all of it came
      SLUICE_RETURN_IF_ERROR(FinalStatus());
      if (!dec_.finished() || dec_.buffered() != 0) {
        return Status::Corruption("binary COPY: " + what_ + " ended without its trailer");
      }
      return false;
    }
    Status st = Error(what_, nullptr, conn_.get());
    done_ = !conn_.ok();
    return st;
  }
}

}  // namespace sluice::pg
