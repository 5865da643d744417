// The Event model: one analytics event as Sluice stores it (DESIGN.md, "Event, as stored"),
// and the Rejection that the quarantine keeps for an event that failed validation.
//
// Both are encoded to bytes for the buffer by EncodeRecord and decoded by DecodeRecord. The
// encoding is a private, versioned binary format (a kind byte, then length-prefixed fields):
// compact, cheap to decode, and independent of the JSON the client sent.
//
// Strings that are empty mean NULL in the stored row (a user_id of "" is no user_id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"

namespace sluice::event {

struct Event {
  std::string event_id;      // messageId, or a UUIDv7 made by the server
  std::string type;          // track, identify, page, screen, group, alias
  std::string event;         // track: event; page/screen: name; otherwise empty
  std::string user_id;
  std::string anonymous_id;
  int64_t event_time_us = 0;           // corrected for client clock skew
  std::optional<int64_t> sent_at_us;   // sentAt, when the client sent one
  int64_t received_at_us = 0;          // server clock at ingest
  std::string properties;    // JSON object text as sent, or empty
  std::string traits;        // JSON object text as sent, or empty
  std::string context;       // JSON object text as sent, or empty
  std::string source;        // the write key's name

  bool operator==(const Event&) const = default;
};

// An event (or body) that failed validation, kept with the reason and the original bytes.
struct Rejection {
  int64_t received_at_us = 0;
  std::string source;
  std::string error;
  std::string body;  // the original bytes of the event (or of the whole body)

  bool operator==(const Rejection&) const = default;
};

using Record = std::variant<Event, Rejection>;

std::string EncodeRecord(const Event& e);
std::string EncodeRecord(const Rejection& r);
// Corruption when `bytes` is not a record this version wrote.
Result<Record> DecodeRecord(std::string_view bytes);

}  // namespace sluice::event
