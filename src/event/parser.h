// Parsing and validation of ingest bodies (Segment HTTP Tracking API shapes) into Events.
//
// Endpoints and shapes:
//   kTrack..kAlias  one event object; its type comes from the endpoint ("type" is ignored).
//   kBatch          {"batch":[{type:..., ...}, ...], "sentAt":..., "context":..., "writeKey":...}
//   kEvents         a JSON array of event objects (the body starts with '['), or NDJSON: one
//                   object per non-empty line, blank lines skipped, "\r\n" accepted. Each object
//                   names its "type". A body that is one pretty-printed object also works.
// Unknown fields (integrations, _metadata, channel, ...) are ignored. A JSON null counts as an
// absent field everywhere.
//
// Normalisation: event_id = messageId (string) or a fresh UUIDv7; event_time =
// received_at - (sentAt - timestamp) when both are present (client clock-skew correction),
// timestamp when only it is present, received_at otherwise. When "timestamp" is absent,
// "originalTimestamp" (what RudderStack SDKs send) stands in for it. A batch's sentAt applies
// to every event in it unless the event has its own. A batch-level "context" object is used
// for events that have none. group's groupId and alias's previousId are stored in `properties`
// as {"groupId":…} / {"previousId":…}, and page's "category" as {"category":…}, since the
// stored schema has no column for them; each is added in front of the event's own properties
// unless those already have that key. properties/traits/context are stored as compact JSON
// (whitespace dropped, escapes decoded to UTF-8 except where JSON needs them, numbers in
// shortest round-trip form with doubles keeping a ".0").
//
// Validation (each failure rejects one event, with a reason, and keeps the others): not an
// object; no userId and no anonymousId (empty strings count as missing; numbers are accepted
// and stored as their decimal text; other types are an error); unknown or missing type
// (batch/events only); track without a non-empty string "event"; page/screen "name" or page
// "category" present but not a string; group without "groupId" (a non-empty string or a
// number); alias without "previousId" (a non-empty string or a number); properties/traits/
// context present but not objects; timestamp, sentAt or originalTimestamp present but not an
// ISO-8601/RFC 3339 string; messageId present but not a string or longer than 256 bytes; the
// event's compact JSON text over max_event_bytes (compact, so a client's indentation does not
// count). A batch whose own "sentAt" or "context" is invalid rejects the events that would
// inherit it. In batch and events bodies each error starts with "event N: ".
//
// Limitations: integers beyond 64 bits and numbers beyond double range are not JSON simdjson
// accepts, so a body containing one is refused as not valid JSON. writeKey is read only from
// the top level of single-event and batch bodies, never from kEvents.
//
// Concurrency: stateless functions, safe from any thread (each thread reuses its own parser
// and buffers). Performance: about 390,000 events/s (750 MB/s) per core for 2 KB events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "event/event.h"

namespace sluice::event {

enum class Endpoint { kTrack, kIdentify, kPage, kScreen, kGroup, kAlias, kBatch, kEvents };

struct ParseOptions {
  size_t max_event_bytes = size_t{32} * 1024;
  size_t max_batch_events = 10'000;  // more than this in one body: the body is refused
};

struct RejectedEvent {
  size_t index = 0;   // position in the batch / array / NDJSON line number (0-based)
  std::string error;  // a sentence a developer can act on
  // The event's bytes, truncated to max_event_bytes: as sent for a single-event body and an
  // NDJSON line; the compact JSON of the element for a batch or array element (the DOM does
  // not keep source positions).
  std::string raw;
  // Set by Parse last: a short, stable code for metrics labels: not_json, not_object,
  // too_large, bad_type, missing_user, missing_event, missing_group_id, missing_previous_id,
  // bad_timestamp, bad_message_id, bad_field, bad_batch_field.
  std::string reason{};
};

struct ParseOutput {
  std::vector<Event> events;            // valid events, in body order; source left empty
  std::vector<RejectedEvent> rejected;  // invalid ones, in body order
  std::string write_key;                // "writeKey" string from the body (top level), if any
};

// Parses `body`. Returns InvalidArgument (with a message naming the problem and, for JSON
// errors, the byte where it is) when the body as a whole is unusable: empty, not JSON (for
// NDJSON: no line is JSON), wrong top-level shape, more than max_batch_events events; `out` is
// then empty. Otherwise OK, with every event either in `events` or in `rejected` (an empty
// batch is OK with neither). `out` is cleared first. `received_at_us` stamps every event.
// `body` need not be padded.
Status Parse(Endpoint endpoint, std::string_view body, int64_t received_at_us,
             const ParseOptions& options, ParseOutput* out);

// The reason code (see RejectedEvent::reason) of a rejection message made by Parse.
std::string_view RejectionReason(std::string_view error);

// Parses an ISO-8601 / RFC 3339 timestamp ("2024-05-01T12:00:00Z",
// "2024-05-01T12:00:00.123456+02:00", "2024-05-01 12:00:00Z") to microseconds since the
// epoch. Accepted: 'T', 't' or ' ' between date and time; seconds optional (HH:MM); up to 9
// fractional digits, truncated to microseconds; 'Z', 'z', ±HH:MM or ±HHMM, or no offset (UTC);
// a date alone ("2024-05-01", midnight UTC); second 60 (rolls into the next minute); years
// 1970-9999, with real month lengths and leap years. InvalidArgument otherwise, with a message
// "not an ISO-8601 time: \"<input>\" (<why>)".
Result<int64_t> ParseTimestamp(std::string_view text);

// Formats microseconds since the epoch as "2024-05-01T12:00:00.123456Z". Any int64 formats
// (before 1970 too); ParseTimestamp(FormatTimestamp(t)) == t for 1970..9999.
std::string FormatTimestamp(int64_t micros);

}  // namespace sluice::event
