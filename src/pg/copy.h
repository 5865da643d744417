// PostgreSQL binary COPY (the "PGCOPY" format of the COPY documentation): an encoder and a
// decoder of the byte format (pure, unit-tested), and the libpq streams that carry them:
// CopyIn (COPY … FROM STDIN, PQputCopyData) and CopyOut (COPY … TO STDOUT, PQgetCopyData).
//
// Format: an 11-byte signature, int32 flags (0), int32 header-extension length (0); then per
// row an int16 field count and, per field, an int32 length (-1 for NULL) and that many bytes of
// the type's binary representation, big-endian; then an int16 -1 trailer. Types used here:
//   int8         8 bytes;                  bool  1 byte;
//   timestamptz  int64 microseconds since 2000-01-01 00:00:00 UTC;
//   text, json   the UTF-8 bytes (no NUL byte: PostgreSQL refuses one in text);
//   jsonb        a version byte (1), then the JSON text.
//
// Concurrency: none of these is thread-safe; each belongs to one thread (and CopyIn/CopyOut to
// the Connection they run on, which must not be used for anything else until they finish).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pg/pg.h"

namespace sluice::pg {

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
inline constexpr int64_t kPostgresEpochUnixUs = 946'684'800'000'000;

// Builds a binary COPY stream in memory; the caller sends (and Clear()s) it in pieces.
class CopyEncoder {
 public:
  CopyEncoder();  // the buffer starts with the header

  // Starts a row of `fields` fields; exactly that many Add* calls must follow.
  void BeginRow(int16_t fields);
  void AddNull();
  void AddBool(bool v);
  void AddInt64(int64_t v);
  // `unix_us`: microseconds since the Unix epoch.
  void AddTimestamp(int64_t unix_us);
  // text, varchar and json: the bytes as they are (the caller guarantees UTF-8 without NUL).
  void AddText(std::string_view s);
  // jsonb: version 1, then the text (which the server parses).
  void AddJsonb(std::string_view json);
  // The end-of-data marker; nothing may follow.
  void AddTrailer();

  std::string_view data() const { return buf_; }
  size_t size() const { return buf_.size(); }
  // Drops the bytes encoded so far (after sending them); the stream continues.
  void Clear() { buf_.clear(); }

 private:
  void PutInt16(int16_t v);
  void PutInt32(int32_t v);
  void PutInt64(int64_t v);
  std::string buf_;
};

// One decoded row: each field's raw bytes, or nullopt for NULL. The views point into the
// decoder's current input and stay valid until the decoder's next Feed or Next.
struct CopyRow {
  std::vector<std::optional<std::string_view>> fields;
};

// Field decoders: Corruption when the bytes are not the type's binary form.
Result<int64_t> DecodeInt64(std::string_view field);
Result<bool> DecodeBool(std::string_view field);
// Microseconds since the Unix epoch.
Result<int64_t> DecodeTimestamp(std::string_view field);
// The JSON text of a jsonb field (json and text fields are their text already).
Result<std::string_view> DecodeJsonb(std::string_view field);

// Parses a binary COPY stream fed in chunks of any size. Rows that end inside a chunk are
// decoded in place; the bytes of a row cut by a chunk boundary are kept until it completes.
class CopyDecoder {
 public:
  // Adds input. `chunk` must stay valid until the next Feed (rows point into it).
  void Feed(std::string_view chunk);
  // Decodes the next complete row into *row: true when it did; false when the buffered input
  // holds no complete row (Feed more) or the trailer was read (finished()). Corruption on a
  // bad signature, flags or field length.
  Result<bool> Next(CopyRow* row);
  bool finished() const { return finished_; }
  // Input bytes not yet consumed (a partial row, or anything after the trailer).
  size_t buffered() const { return cur_.size(); }

 private:
  std::string_view cur_;  // unconsumed input: a view of the last chunk, or of pending_
  std::string pending_;   // owned copy when a row spans chunks
  bool header_done_ = false;
  bool finished_ = false;
};

// COPY … FROM STDIN (FORMAT binary) on a connection: encode rows into encoder(), call
// MaybeFlush() now and then, and Finish(). Destroying an unfinished CopyIn aborts it (the
// server fails the COPY; the connection stays usable, inside the caller's transaction, which
// is then aborted).
class CopyIn {
 public:
  // Sends `copy_sql` (a COPY … FROM STDIN (FORMAT binary)) and waits for the server to accept
  // data.
  static Result<std::unique_ptr<CopyIn>> Start(Connection& conn, std::string_view copy_sql,
                                               size_t flush_bytes = 1 << 20);
  ~CopyIn();
  CopyIn(const CopyIn&) = delete;
  CopyIn& operator=(const CopyIn&) = delete;

  CopyEncoder& encoder() { return enc_; }
  // Sends the encoded bytes once there are at least flush_bytes of them.
  Status MaybeFlush() { return enc_.size() >= flush_bytes_ ? Send() : Status::OK(); }
  // Sends the rest and the trailer, ends the COPY and returns the rows the server stored. The
  // server's error (a row for which no partition exists, invalid JSON…) when it refused them.
  Result<uint64_t> Finish();

 private:
  CopyIn(Connection& conn, std::string what, size_t flush_bytes)
      : conn_(conn), what_(std::move(what)), flush_bytes_(flush_bytes) {}
  Status Send();
  Status Abort(std::string_view why);

  Connection& conn_;
  std::string what_;
  size_t flush_bytes_;
  CopyEncoder enc_;
  bool done_ = false;
};

// COPY … TO STDOUT (FORMAT binary) on a connection, read a row at a time (libpq hands over
// one row per message: memory stays at one row). Destroying an unfinished CopyOut cancels the
// statement and drains the connection so that it can be used again.
class CopyOut {
 public:
  static Result<std::unique_ptr<CopyOut>> Start(Connection& conn, std::string_view copy_sql);
  ~CopyOut();
  CopyOut(const CopyOut&) = delete;
  CopyOut& operator=(const CopyOut&) = delete;

  // The next row into *row (views valid until the next call): true, or false at the end of
  // the data once the COPY's final status was OK; the server's error otherwise.
  Result<bool> Next(CopyRow* row);

 private:
  CopyOut(Connection& conn, std::string what) : conn_(conn), what_(std::move(what)) {}
  Status FinalStatus();
  void ReleaseMessage();

  Connection& conn_;
  std::string what_;
  CopyDecoder dec_;
  char* message_ = nullptr;  // the last PQgetCopyData buffer (PQfreemem)
  bool done_ = false;
};

}  // namespace sluice::pg
