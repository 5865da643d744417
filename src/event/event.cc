// Record encoding. Layout (version 1), all integers little-endian:
//
//   Event:     'E' 0x01 str(event_id) str(type) str(event) str(user_id) str(anonymous_id)
//              i64(event_time_us) u8(has_sent_at: 0|1) [i64(sent_at_us)] i64(received_at_us)
//              str(properties) str(traits) str(context) str(source)
//   Rejection: 'R' 0x01 i64(received_at_us) str(source) str(error) str(body)
//
// where str(s) is a LEB128 varint length followed by the bytes. A record is exactly its
// fields: trailing bytes are Corruption, so a decoder never silently accepts a torn or
// concatenated record.

#include "event/event.h"

#include <string>
#include <string_view>

namespace sluice::event {
namespace {

constexpr char kEventKind = 'E';
constexpr char kRejectionKind = 'R';
constexpr char kVersion = 1;
constexpr size_t kMaxVarintBytes = 10;

void PutVarint(std::string* out, uint64_t v) {
  char buf[kMaxVarintBytes];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

void PutI64(std::string* out, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  out->append(buf, 8);
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

size_t StringSize(std::string_view s) { return VarintSize(s.size()) + s.size(); }

// Bounds-checked reader over untrusted bytes: every getter fails rather than over-reading.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool GetByte(uint8_t* out) {
    if (in_.empty()) return false;
    *out = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }

  bool GetVarint(uint64_t* out) {
    uint64_t v = 0;
    for (size_t i = 0; i < kMaxVarintBytes; ++i) {
      uint8_t b = 0;
      if (!GetByte(&b)) return false;
      // The 10th byte may only carry the top bit of a 64-bit value.
      if (i == kMaxVarintBytes - 1 && b > 1) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return false;
  }

  bool GetString(std::string* out) {
    uint64_t n = 0;
    if (!GetVarint(&n) || n > in_.size()) return false;
    out->assign(in_.data(), static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return true;
  }

  bool GetI64(int64_t* out) {
    if (in_.size() < 8) return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    *out = static_cast<int64_t>(u);
    in_.remove_prefix(8);
    return true;
  }

  bool AtEnd() const { return in_.empty(); }

 private:
  std::string_view in_;
};

Status Corrupt(std::string_view what) {
  return Status::Corruption("record is not a valid event record: " + std::string(what));
}

Result<Record> DecodeEvent(Reader* r) {
  Event e;
  uint8_t has_sent_at = 0;
  if (!r->GetString(&e.event_id) || !r->GetString(&e.type) || !r->GetString(&e.event) ||
      !r->GetString(&e.user_id) || !r->GetString(&e.anonymous_id) || !r->GetI64(&e.event_time_us) ||
      !r->GetByte(&has_sent_at)) {
    return Corrupt("truncated event");
  }
  if (has_sent_at > 1) return Corrupt("bad sent_at flag");
  if (has_sent_at == 1) {
    int64_t sent_at = 0;
    if (!r->GetI64(&sent_at)) return Corrupt("truncated event");
    e.sent_at_us = sent_at;
  }
  if (!r->GetI64(&e.received_at_us) || !r->GetString(&e.properties) || !r->GetString(&e.traits) ||
      !r->GetString(&e.context) || !r->GetString(&e.source)) {
    return Corrupt("truncated event");
  }
  if (!r->AtEnd()) return Corrupt("trailing bytes after event");
  return Record(std::move(e));
}

Result<Record> DecodeRejection(Reader* r) {
  Rejection rej;
  if (!r->GetI64(&rej.received_at_us) || !r->GetString(&rej.source) || !r->GetString(&rej.error) ||
      !r->GetString(&rej.body)) {
    return Corrupt("truncated rejection");
  }
  if (!r->AtEnd()) return Corrupt("trailing bytes after rejection");
  return Record(std::move(rej));
}

}  // namespace

std::string EncodeRecord(const Event& e) {
  std::string out;
  out.reserve(2 + StringSize(e.event_id) + StringSize(e.type) + StringSize(e.event) +
              StringSize(e.user_id) + StringSize(e.anonymous_id) + 8 + 1 + 8 + 8 +
              StringSize(e.properties) + StringSize(e.traits) + StringSize(e.context) +
              StringSize(e.source));
  out += kEventKind;
  out += kVersion;
  PutString(&out, e.event_id);
  PutString(&out, e.type);
  PutString(&out, e.event);
  PutString(&out, e.user_id);
  PutString(&out, e.anonymous_id);
  PutI64(&out, e.event_time_us);
  out += static_cast<char>(e.sent_at_us.has_value() ? 1 : 0);
  if (e.sent_at_us) PutI64(&out, *e.sent_at_us);
  PutI64(&out, e.received_at_us);
  PutString(&out, e.properties);
  PutString(&out, e.traits);
  PutString(&out, e.context);
  PutString(&out, e.source);
  return out;
}

std::string EncodeRecord(const Rejection& r) {
  std::string out;
  out.reserve(2 + 8 + StringSize(r.source) + StringSize(r.error) + StringSize(r.body));
  out += kRejectionKind;
  out += kVersion;
  PutI64(&out, r.received_at_us);
  PutString(&out, r.source);
  PutString(&out, r.error);
  PutString(&out, r.body);
  return out;
}

Result<Record> DecodeRecord(std::string_view bytes) {
  Reader r(bytes);
  uint8_t kind = 0, version = 0;
  if (!r.GetByte(&kind) || !r.GetByte(&version)) return Corrupt("shorter than its header");
  if (kind != kEventKind && kind != kRejectionKind) {
    return Corrupt("unknown kind byte " + std::to_string(kind));
  }
  if (version != kVersion) {
    return Corrupt("version " + std::to_string(version) + ", this build reads version " +
                   std::to_string(static_cast<int>(kVersion)));
  }
  return kind == kEventKind ? DecodeEvent(&r) : DecodeRejection(&r);
}

}  // namespace sluice::event
