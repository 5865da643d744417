// libFuzzer target for the ingest parser, timestamps and the record decoder.
//
// The first input byte picks the endpoint and the limits; the rest is the body. Besides not
// crashing (ASan/UBSan), every parse must keep the parser's promises: each event has an id, a
// known type and a user, its JSON columns are JSON objects, it survives Encode/Decode exactly,
// and rejections are in order with bounded raw bytes. A broken promise aborts.

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "event/event.h"
#include "event/parser.h"

namespace sluice::event {
namespace {

constexpr int64_t kReceived = 1'714'564'800'000'000;

void Require(bool ok, const char* what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

bool IsJsonObject(const std::string& text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text).get(root) != simdjson::SUCCESS) return false;
  return root.type() == simdjson::dom::element_type::OBJECT;
}

template <typename T>
void RequireRoundTrip(const T& value) {
  Result<Record> back = DecodeRecord(EncodeRecord(value));
  Require(back.ok(), "encoded record does not decode", back.status().message());
  Require(std::holds_alternative<T>(*back) && std::get<T>(*back) == value,
          "record changed in Encode/Decode");
}

void CheckParse(uint8_t selector, std::string_view body) {
  const auto endpoint = static_cast<Endpoint>(selector % 8);
  ParseOptions options;
  // Small limits half the time, so that the size checks run too.
  if (selector & 0x08) {
    options.max_event_bytes = 64 + (selector >> 4) * 16;
    options.max_batch_events = 1 + (selector >> 4);
  }
  ParseOutput out;
  const Status s = Parse(endpoint, body, kReceived, options, &out);
  if (!s.ok()) {
    Require(s.code() == StatusCode::kInvalidArgument, "unexpected status code", s.ToString());
    Require(!s.message().empty(), "empty error message");
    Require(out.events.empty() && out.rejected.empty(), "output left behind by a failed parse");
    return;
  }
  const bool single = endpoint != Endpoint::kBatch && endpoint != Endpoint::kEvents;
  if (single) Require(out.events.size() + out.rejected.size() == 1, "single endpoint count");
  Require(out.events.size() + out.rejected.size() <= options.max_batch_events || single,
          "more events than max_batch_events");
  for (const Event& e : out.events) {
    Require(!e.event_id.empty(), "empty event_id");
    Require(e.event_id.size() <= 256, "event_id over 256 bytes", e.event_id);
    Require(e.type == "track" || e.type == "identify" || e.type == "page" || e.type == "screen" ||
                e.type == "group" || e.type == "alias",
            "unknown type", e.type);
    Require(!e.user_id.empty() || !e.anonymous_id.empty(), "no user");
    Require(e.type != "track" || !e.event.empty(), "track without event name");
    Require(e.received_at_us == kReceived, "received_at not stamped");
    Require(e.source.empty(), "source set by the parser");
    for (const std::string* json : {&e.properties, &e.traits, &e.context}) {
      Require(json->empty() || IsJsonObject(*json), "JSON column is not a JSON object", *json);
    }
    Require(e.type != "group" || e.properties.find("\"groupId\":") != std::string::npos,
            "group without groupId", e.properties);
    RequireRoundTrip(e);
  }
  size_t previous = 0;
  for (size_t i = 0; i < out.rejected.size(); ++i) {
    const RejectedEvent& r = out.rejected[i];
    Require(i == 0 || r.index > previous, "rejections out of order");
    previous = r.index;
    Require(!r.error.empty(), "rejection without a reason");
    Require(r.raw.size() <= options.max_event_bytes, "raw bytes over max_event_bytes");
    RequireRoundTrip(Rejection{kReceived, "src", r.error, r.raw});
  }
}

void CheckTimestamp(std::string_view text) {
  if (text.size() > 64) return;
  Result<int64_t> t = ParseTimestamp(text);
  if (!t.ok() || *t < 0) return;
  const std::string formatted = FormatTimestamp(*t);
  Result<int64_t> again = ParseTimestamp(formatted);
  Require(again.ok() && *again == *t, "FormatTimestamp does not round-trip", formatted);
}

void CheckDecode(std::string_view bytes) {
  Result<Record> r = DecodeRecord(bytes);
  if (!r.ok()) {
    Require(r.status().code() == StatusCode::kCorruption, "decode error is not Corruption");
    return;
  }
  std::visit([](const auto& record) { RequireRoundTrip(record); }, *r);
}

}  // namespace
}  // namespace sluice::event

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  sluice::event::CheckParse(data[0], rest);
  sluice::event::CheckTimestamp(rest);
  sluice::event::CheckDecode(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
