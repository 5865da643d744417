// Ingest parsing with the simdjson DOM API.
//
// Each body is copied into a thread-local padded buffer and parsed by a thread-local
// dom::parser (both keep their capacity, so a steady stream of bodies allocates nothing for
// parsing). Every event object is then walked once: its top-level fields are written as compact
// JSON into a thread-local buffer while the fields Sluice reads are picked out. That single
// pass gives the event's size (for max_event_bytes), the raw text of a rejected batch element,
// and the text of properties/traits/context (substrings of the buffer), without re-walking.
//
// The DOM does not record source offsets, so the position in a "not valid JSON" message comes
// from a small grammar check (FindJsonErrorOffset) that runs only on the error path.

#include "event/parser.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "event/quote.h"
#include "event/uuid.h"

namespace sluice::event {
namespace {

namespace dom = simdjson::dom;

constexpr size_t kMaxMessageIdBytes = 256;
// A dom::parser keeps buffers of roughly 14 bytes per byte of the largest document it has
// parsed. Past this capacity a thread's parser is dropped after use, so one huge body does not
// pin tens of megabytes per thread for the life of the process.
constexpr size_t kMaxRetainedParserCapacity = 1 << 20;
constexpr std::string_view kTypeList = "track, identify, page, screen, group, alias";
constexpr std::string_view kTypeNames[] = {"track", "identify", "page", "screen", "group", "alias"};

// In the order of Endpoint, so that a single-event endpoint converts to its type.
enum class EventType { kTrack, kIdentify, kPage, kScreen, kGroup, kAlias };
static_assert(static_cast<int>(EventType::kAlias) == static_cast<int>(Endpoint::kAlias));

struct ThreadState {
  dom::parser parser;
  std::string padded;         // the text being parsed, followed by SIMDJSON_PADDING bytes
  std::string json;           // compact JSON of the event being built
  std::string batch_context;  // compact JSON of a batch-level "context"
  std::string scratch;        // small values (a groupId as JSON)
};

ThreadState& State() {
  thread_local ThreadState state;
  return state;
}

simdjson::error_code ParseJson(ThreadState& st, std::string_view text, dom::element* root) {
  const size_t need = text.size() + simdjson::SIMDJSON_PADDING;
  if (st.padded.size() < need) st.padded.resize(std::max(need, st.padded.size() * 2));
  if (!text.empty()) std::memcpy(st.padded.data(), text.data(), text.size());
  return st.parser.parse(st.padded.data(), text.size(), false).get(*root);
}

std::string_view JsonTypeName(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

bool IsNumber(dom::element_type t) {
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 ||
         t == dom::element_type::DOUBLE;
}

// ---- Compact JSON writer -------------------------------------------------------------------

constexpr std::array<bool, 256> MakeEscapeTable() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}
constexpr std::array<bool, 256> kNeedsEscape = MakeEscapeTable();

void AppendString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kNeedsEscape[c]) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

template <typename T>
void AppendChars(std::string* out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendDouble(std::string* out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  const std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  out->append(text);
  // Keep a double a double ("1.0", not "1") so typed readers of the JSON agree with the client.
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

void AppendValue(std::string* out, dom::element v) {
  switch (v.type()) {
    case dom::element_type::OBJECT: {
      out->push_back('{');
      bool first = true;
      for (dom::key_value_pair field : dom::object(v)) {
        if (!first) out->push_back(',');
        first = false;
        AppendString(out, field.key);
        out->push_back(':');
        AppendValue(out, field.value);
      }
      out->push_back('}');
      break;
    }
    case dom::element_type::ARRAY: {
      out->push_back('[');
      bool first = true;
      for (dom::element item : dom::array(v)) {
        if (!first) out->push_back(',');
        first = false;
        AppendValue(out, item);
      }
      out->push_back(']');
      break;
    }
    case dom::element_type::STRING:
      AppendString(out, std::string_view(v));
      break;
    case dom::element_type::INT64:
      AppendChars(out, int64_t(v));
      break;
    case dom::element_type::UINT64:
      AppendChars(out, uint64_t(v));
      break;
    case dom::element_type::DOUBLE:
      AppendDouble(out, double(v));
      break;
    case dom::element_type::BOOL:
      out->append(bool(v) ? "true" : "false");
      break;
    case dom::element_type::NULL_VALUE:
      out->append("null");
      break;
  }
}

// ---- Locating JSON errors --------------------------------------------------------------------

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Offset of the first invalid UTF-8 sequence, if any (RFC 3629: no overlongs, no surrogates).
std::optional<size_t> FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (s.size() - i <= n) return i;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if (cc < (k == 1 ? lo : 0x80) || cc > (k == 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return std::nullopt;
}

// Offset where `s` stops being RFC 8259 JSON, by a grammar-only check (no depth limit, no
// number range). nullopt when the grammar holds, e.g. for simdjson's depth or range errors.
std::optional<size_t> FindJsonErrorOffset(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  auto skip_ws = [&] {
    while (i < n && IsJsonSpace(s[i])) ++i;
  };
  // Advances over a string starting at s[i] == '"'; false (with i at the fault) if malformed.
  auto scan_string = [&]() -> bool {
    ++i;
    while (i < n) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        ++i;
        continue;
      }
      if (i + 1 >= n) return false;
      const char e = s[i + 1];
      if (e == 'u') {
        if (n - i < 6 || !IsHex(s[i + 2]) || !IsHex(s[i + 3]) || !IsHex(s[i + 4]) ||
            !IsHex(s[i + 5])) {
          return false;
        }
        unsigned cp = 0;
        std::from_chars(s.data() + i + 2, s.data() + i + 6, cp, 16);
        if (cp >= 0xdc00 && cp <= 0xdfff) return false;  // lone low surrogate
        if (cp >= 0xd800 && cp <= 0xdbff) {              // needs a low surrogate next
          unsigned lo = 0;
          if (n - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u') return false;
          auto r = std::from_chars(s.data() + i + 8, s.data() + i + 12, lo, 16);
          if (r.ptr != s.data() + i + 12 || lo < 0xdc00 || lo > 0xdfff) return false;
          i += 6;
        }
        i += 6;
      } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
        i += 2;
      } else {
        return false;
      }
    }
    return false;
  };
  auto scan_number = [&]() -> bool {
    if (i < n && s[i] == '-') ++i;
    if (i >= n) return false;
    if (s[i] == '0') {
      ++i;
    } else if (s[i] >= '1' && s[i] <= '9') {
      while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    } else {
      return false;
    }
    if (i < n && s[i] == '.') {
      ++i;
      if (i >= n || s[i] < '0' || s[i] > '9') return false;
      while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
      if (i >= n || s[i] < '0' || s[i] > '9') return false;
      while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    }
    return true;
  };

  std::vector<char> stack;  // '{' or '['
  skip_ws();
  if (i >= n) return i;
  while (true) {
    // Expect a value at i.
    skip_ws();
    if (i >= n) return i;
    const char c = s[i];
    bool scalar = true;
    if (c == '{' || c == '[') {
      stack.push_back(c);
      ++i;
      skip_ws();
      if (i < n && s[i] == (c == '{' ? '}' : ']')) {
        stack.pop_back();
        ++i;
      } else if (c == '{') {
        if (i >= n || s[i] != '"' || !scan_string()) return i;
        skip_ws();
        if (i >= n || s[i] != ':') return i;
        ++i;
        continue;
      } else {
        continue;
      }
      scalar = false;
    }
    if (scalar) {
      if (c == '"') {
        if (!scan_string()) return i;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!scan_number()) return i;
      } else if (s.substr(i, 4) == "true" || s.substr(i, 4) == "null") {
        i += 4;
      } else if (s.substr(i, 5) == "false") {
        i += 5;
      } else {
        return i;
      }
    }
    // After a value: close containers or move to the next element.
    while (true) {
      skip_ws();
      if (stack.empty()) return i < n ? std::optional<size_t>(i) : std::nullopt;
      if (i >= n) return i;
      const char top = stack.back();
      if (s[i] == (top == '{' ? '}' : ']')) {
        stack.pop_back();
        ++i;
        continue;
      }
      if (s[i] != ',') return i;
      ++i;
      if (top == '{') {
        skip_ws();
        if (i >= n || s[i] != '"' || !scan_string()) return i;
        skip_ws();
        if (i >= n || s[i] != ':') return i;
        ++i;
      }
      break;
    }
  }
}

// "body is not valid JSON: <reason> (at byte N, near "...")".
std::string JsonErrorMessage(std::string_view what, std::string_view text,
                             simdjson::error_code error) {
  std::string m(what);
  if (error == simdjson::EMPTY) {
    m += " is empty";
    return m;
  }
  m += " is not valid JSON: ";
  m += simdjson::error_message(error);
  std::optional<size_t> at =
      error == simdjson::UTF8_ERROR ? FindInvalidUtf8(text) : FindJsonErrorOffset(text);
  if (at) {
    m += " (at byte " + std::to_string(*at);
    if (*at < text.size())
      m += ", near " + QuoteForMessage(text.substr(*at), 24);
    else
      m += ", the end";
    m += ')';
  }
  return m;
}

// ---- One event -------------------------------------------------------------------------------

struct Slot {
  dom::element value;
  bool present = false;  // present and not null: a JSON null counts as absent
};

// The fields of one event object that Sluice reads. Object-valued fields also record where
// their compact text sits in ThreadState::json.
struct Fields {
  Slot type, event, user_id, anonymous_id, message_id, timestamp, original_timestamp, sent_at;
  Slot properties, traits, context, name, category, group_id, previous_id, write_key;
  size_t properties_begin = 0, properties_end = 0;
  size_t traits_begin = 0, traits_end = 0;
  size_t context_begin = 0, context_end = 0;
};

// Which slot (and span) a top-level key fills; nullptr for keys Sluice ignores.
Slot* SlotFor(Fields* f, std::string_view key, size_t** begin, size_t** end) {
  *begin = *end = nullptr;
  switch (key.size()) {
    case 4:
      if (key == "type") return &f->type;
      if (key == "name") return &f->name;
      break;
    case 5:
      if (key == "event") return &f->event;
      break;
    case 6:
      if (key == "userId") return &f->user_id;
      if (key == "sentAt") return &f->sent_at;
      if (key == "traits") {
        *begin = &f->traits_begin;
        *end = &f->traits_end;
        return &f->traits;
      }
      break;
    case 7:
      if (key == "context") {
        *begin = &f->context_begin;
        *end = &f->context_end;
        return &f->context;
      }
      if (key == "groupId") return &f->group_id;
      break;
    case 8:
      if (key == "category") return &f->category;
      if (key == "writeKey") return &f->write_key;
      break;
    case 9:
      if (key == "messageId") return &f->message_id;
      if (key == "timestamp") return &f->timestamp;
      break;
    case 10:
      if (key == "properties") {
        *begin = &f->properties_begin;
        *end = &f->properties_end;
        return &f->properties;
      }
      if (key == "previousId") return &f->previous_id;
      break;
    case 11:
      if (key == "anonymousId") return &f->anonymous_id;
      break;
    case 17:
      if (key == "originalTimestamp") return &f->original_timestamp;
      break;
    default:
      break;
  }
  return nullptr;
}

// What a batch gives the events in it that lack their own.
struct BatchDefaults {
  std::optional<int64_t> sent_at_us;
  std::string sent_at_error;  // non-empty: the batch's sentAt is invalid
  bool has_context = false;
  std::string context_error;  // non-empty: the batch's context is not an object
};

// Reads an id that may be a string or a number into `out`. False with `error` set when the
// value has another type. An absent id or "" leaves `out` empty.
bool ReadId(const Slot& slot, std::string_view name, std::string* out, std::string* error) {
  out->clear();
  if (!slot.present) return true;
  const dom::element& v = slot.value;
  switch (v.type()) {
    case dom::element_type::STRING:
      out->assign(std::string_view(v));
      return true;
    case dom::element_type::INT64:
      AppendChars(out, int64_t(v));
      return true;
    case dom::element_type::UINT64:
      AppendChars(out, uint64_t(v));
      return true;
    case dom::element_type::DOUBLE: {
      char buf[400];  // fixed notation of any finite double fits
      auto r = std::to_chars(buf, buf + sizeof(buf), double(v), std::chars_format::fixed);
      out->assign(buf, r.ptr);
      return true;
    }
    default:
      *error = "\"" + std::string(name) + "\" must be a string or a number, got " +
               std::string(JsonTypeName(v.type()));
      return false;
  }
}

// Parses an optional time field. False with `error` set when present but not ISO-8601.
bool ReadTime(const Slot& slot, std::string_view name, std::optional<int64_t>* out,
              std::string* error) {
  out->reset();
  if (!slot.present) return true;
  std::string_view text;
  if (slot.value.get_string().get(text) != simdjson::SUCCESS) {
    *error = "\"" + std::string(name) + "\" must be an ISO-8601 time string, got " +
             std::string(JsonTypeName(slot.value.type()));
    return false;
  }
  Result<int64_t> t = ParseTimestamp(text);
  if (!t.ok()) {
    *error = "\"" + std::string(name) + "\" is " + t.status().message();
    return false;
  }
  *out = *t;
  return true;
}

bool CheckObject(const Slot& slot, std::string_view name, std::string* error) {
  if (!slot.present || slot.value.type() == dom::element_type::OBJECT) return true;
  *error = "\"" + std::string(name) + "\" must be a JSON object, got " +
           std::string(JsonTypeName(slot.value.type()));
  return false;
}

// `properties` with `"key":value_json` added first, unless `properties` (an object or absent)
// already has `key`.
std::string PropertiesWith(std::string_view properties_text, const Slot& properties,
                           std::string_view key, std::string_view value_json) {
  if (properties.present) {
    dom::element existing;
    if (dom::object(properties.value).at_key(key).get(existing) == simdjson::SUCCESS) {
      return std::string(properties_text);
    }
  }
  std::string out;
  out.reserve(properties_text.size() + key.size() + value_json.size() + 5);
  out += '{';
  AppendString(&out, key);
  out += ':';
  out += value_json;
  if (properties_text.size() > 2) {  // a non-empty object: "{...}"
    out += ',';
    out.append(properties_text.substr(1));
  } else {
    out += '}';
  }
  return out;
}

// Validates `v` as one event and fills `event`. Either way, ThreadState::json holds the compact
// text of `v` afterwards. `fixed_type` is the endpoint's type; without it the event's "type"
// field names it. Returns false with `error` (no "event N:" prefix) when the event is invalid.
bool BuildEvent(ThreadState& st, dom::element v, std::optional<EventType> fixed_type,
                const BatchDefaults* defaults, int64_t received_at_us, const ParseOptions& options,
                Event* event, std::string* write_key, std::string* error) {
  std::string& json = st.json;
  json.clear();
  if (v.type() != dom::element_type::OBJECT) {
    AppendValue(&json, v);
    *error = "an event must be a JSON object, got " + std::string(JsonTypeName(v.type()));
    return false;
  }

  Fields f;
  json.push_back('{');
  bool first = true;
  for (dom::key_value_pair field : dom::object(v)) {
    if (!first) json.push_back(',');
    first = false;
    AppendString(&json, field.key);
    json.push_back(':');
    size_t* begin = nullptr;
    size_t* end = nullptr;
    Slot* slot = SlotFor(&f, field.key, &begin, &end);
    if (begin) *begin = json.size();
    AppendValue(&json, field.value);
    if (end) *end = json.size();
    if (slot) {
      slot->value = field.value;
      slot->present = field.value.type() != dom::element_type::NULL_VALUE;
    }
  }
  json.push_back('}');

  if (json.size() > options.max_event_bytes) {
    *error = "event is " + std::to_string(json.size()) + " bytes, over max_event_bytes (" +
             std::to_string(options.max_event_bytes) + ")";
    return false;
  }

  EventType type{};
  if (fixed_type) {
    type = *fixed_type;
  } else {
    std::string_view name;
    if (!f.type.present) {
      *error = "needs a \"type\": one of " + std::string(kTypeList);
      return false;
    }
    if (f.type.value.get_string().get(name) != simdjson::SUCCESS) {
      *error = "\"type\" must be a string (one of " + std::string(kTypeList) + "), got " +
               std::string(JsonTypeName(f.type.value.type()));
      return false;
    }
    auto it = std::find(std::begin(kTypeNames), std::end(kTypeNames), name);
    if (it == std::end(kTypeNames)) {
      *error = "\"type\" " + QuoteForMessage(name) + " is not one of " + std::string(kTypeList);
      return false;
    }
    type = static_cast<EventType>(it - std::begin(kTypeNames));
  }

  if (!ReadId(f.user_id, "userId", &event->user_id, error) ||
      !ReadId(f.anonymous_id, "anonymousId", &event->anonymous_id, error)) {
    return false;
  }
  if (event->user_id.empty() && event->anonymous_id.empty()) {
    *error = "needs \"userId\" or \"anonymousId\" (a non-empty string or a number)";
    return false;
  }

  event->event.clear();
  std::string_view text;
  switch (type) {
    case EventType::kTrack:
      if (!f.event.present || f.event.value.get_string().get(text) != simdjson::SUCCESS ||
          text.empty()) {
        *error = "track event needs a non-empty string \"event\"";
        if (f.event.present && f.event.value.type() != dom::element_type::STRING) {
          *error += ", got " + std::string(JsonTypeName(f.event.value.type()));
        }
        return false;
      }
      event->event.assign(text);
      break;
    case EventType::kPage:
    case EventType::kScreen:
      if (f.name.present) {
        if (f.name.value.get_string().get(text) != simdjson::SUCCESS) {
          *error =
              "\"name\" must be a string, got " + std::string(JsonTypeName(f.name.value.type()));
          return false;
        }
        event->event.assign(text);
      }
      if (type == EventType::kPage && f.category.present &&
          f.category.value.type() != dom::element_type::STRING) {
        *error = "\"category\" must be a string, got " +
                 std::string(JsonTypeName(f.category.value.type()));
        return false;
      }
      break;
    case EventType::kGroup: {
      const bool ok =
          f.group_id.present &&
          (IsNumber(f.group_id.value.type()) ||
           (f.group_id.value.get_string().get(text) == simdjson::SUCCESS && !text.empty()));
      if (!ok) {
        *error = "group event needs \"groupId\" (a non-empty string or a number)";
        if (f.group_id.present && f.group_id.value.type() != dom::element_type::STRING) {
          *error += ", got " + std::string(JsonTypeName(f.group_id.value.type()));
        }
        return false;
      }
      break;
    }
    case EventType::kAlias: {
      const bool ok =
          f.previous_id.present &&
          (IsNumber(f.previous_id.value.type()) ||
           (f.previous_id.value.get_string().get(text) == simdjson::SUCCESS && !text.empty()));
      if (!ok) {
        *error = "alias event needs \"previousId\" (a non-empty string or a number)";
        if (f.previous_id.present && f.previous_id.value.type() != dom::element_type::STRING) {
          *error += ", got " + std::string(JsonTypeName(f.previous_id.value.type()));
        }
        return false;
      }
      break;
    }
    case EventType::kIdentify:
      break;
  }

  if (!CheckObject(f.properties, "properties", error) || !CheckObject(f.traits, "traits", error) ||
      !CheckObject(f.context, "context", error)) {
    return false;
  }

  std::optional<int64_t> timestamp, original_timestamp, sent_at;
  if (!ReadTime(f.timestamp, "timestamp", &timestamp, error) ||
      !ReadTime(f.original_timestamp, "originalTimestamp", &original_timestamp, error) ||
      !ReadTime(f.sent_at, "sentAt", &sent_at, error)) {
    return false;
  }

  std::string_view message_id;
  if (f.message_id.present) {
    if (f.message_id.value.get_string().get(message_id) != simdjson::SUCCESS) {
      *error = "\"messageId\" must be a string, got " +
               std::string(JsonTypeName(f.message_id.value.type()));
      return false;
    }
    if (message_id.size() > kMaxMessageIdBytes) {
      *error = "\"messageId\" is " + std::to_string(message_id.size()) + " bytes, over the " +
               std::to_string(kMaxMessageIdBytes) + "-byte limit";
      return false;
    }
  }

  if (defaults) {
    if (!f.sent_at.present && !defaults->sent_at_error.empty()) {
      *error = defaults->sent_at_error;
      return false;
    }
    if (!f.context.present && !defaults->context_error.empty()) {
      *error = defaults->context_error;
      return false;
    }
    if (!f.sent_at.present) sent_at = defaults->sent_at_us;
  }

  // Valid: fill in the rest.
  if (f.write_key.present && write_key) {
    std::string_view key;
    if (f.write_key.value.get_string().get(key) == simdjson::SUCCESS) write_key->assign(key);
  }
  event->type.assign(kTypeNames[static_cast<size_t>(type)]);
  if (message_id.empty()) {
    event->event_id = DefaultUuid7().Next();
  } else {
    event->event_id.assign(message_id);
  }
  const std::optional<int64_t> client_time = timestamp ? timestamp : original_timestamp;
  event->received_at_us = received_at_us;
  event->sent_at_us = sent_at;
  if (client_time && sent_at) {
    // received_at - (sent_at - client_time), clamped rather than overflowing.
    int64_t skew = 0, corrected = 0;
    if (__builtin_sub_overflow(*sent_at, *client_time, &skew) ||
        __builtin_sub_overflow(received_at_us, skew, &corrected)) {
      corrected = *sent_at >= *client_time ? std::numeric_limits<int64_t>::min()
                                           : std::numeric_limits<int64_t>::max();
    }
    event->event_time_us = corrected;
  } else if (client_time) {
    event->event_time_us = *client_time;
  } else {
    event->event_time_us = received_at_us;
  }

  const std::string_view all(json);
  const std::string_view properties =
      f.properties.present ? all.substr(f.properties_begin, f.properties_end - f.properties_begin)
                           : std::string_view();
  if (type == EventType::kGroup || type == EventType::kAlias ||
      (type == EventType::kPage && f.category.present)) {
    const Slot& extra = type == EventType::kGroup   ? f.group_id
                        : type == EventType::kAlias ? f.previous_id
                                                    : f.category;
    const std::string_view key = type == EventType::kGroup   ? "groupId"
                                 : type == EventType::kAlias ? "previousId"
                                                             : "category";
    st.scratch.clear();
    AppendValue(&st.scratch, extra.value);
    event->properties = PropertiesWith(properties, f.properties, key, st.scratch);
  } else {
    event->properties.assign(properties);
  }
  event->traits.assign(f.traits.present ? all.substr(f.traits_begin, f.traits_end - f.traits_begin)
                                        : std::string_view());
  if (f.context.present) {
    event->context.assign(all.substr(f.context_begin, f.context_end - f.context_begin));
  } else if (defaults && defaults->has_context) {
    event->context.assign(st.batch_context);
  } else {
    event->context.clear();
  }
  event->source.clear();
  return true;
}

std::string_view EndpointPath(Endpoint e) {
  switch (e) {
    case Endpoint::kTrack:
      return "/v1/track";
    case Endpoint::kIdentify:
      return "/v1/identify";
    case Endpoint::kPage:
      return "/v1/page";
    case Endpoint::kScreen:
      return "/v1/screen";
    case Endpoint::kGroup:
      return "/v1/group";
    case Endpoint::kAlias:
      return "/v1/alias";
    case Endpoint::kBatch:
      return "/v1/batch";
    case Endpoint::kEvents:
      return "/v1/events";
  }
  return "?";
}

std::string Truncated(std::string_view raw, size_t max_bytes) {
  return std::string(raw.substr(0, max_bytes));
}

std::string EventPrefix(size_t index) { return "event " + std::to_string(index) + ": "; }

Status TooManyEvents(size_t count, const ParseOptions& options) {
  return Status::InvalidArgument("body has " + std::to_string(count) +
                                 " events, over max_batch_events (" +
                                 std::to_string(options.max_batch_events) + ")");
}

// Adds `v`, element `index` of a batch or array, to `out`.
// Its raw bytes, if rejected, are `raw` when given (an NDJSON line), else its compact JSON.
void AddElement(ThreadState& st, dom::element v, size_t index, const BatchDefaults* defaults,
                int64_t received_at_us, const ParseOptions& options, ParseOutput* out,
                std::optional<std::string_view> raw = std::nullopt) {
  Event event;
  std::string error;
  if (BuildEvent(st, v, std::nullopt, defaults, received_at_us, options, &event, nullptr, &error)) {
    out->events.push_back(std::move(event));
  } else {
    out->rejected.push_back(
        {index, EventPrefix(index) + error,
         Truncated(raw ? *raw : std::string_view(st.json), options.max_event_bytes)});
  }
}

Status ParseSingle(ThreadState& st, Endpoint endpoint, std::string_view body,
                   int64_t received_at_us, const ParseOptions& options, ParseOutput* out) {
  dom::element root;
  if (auto err = ParseJson(st, body, &root)) {
    return Status::InvalidArgument(JsonErrorMessage("body", body, err));
  }
  if (root.type() != dom::element_type::OBJECT) {
    return Status::InvalidArgument("a " + std::string(EndpointPath(endpoint)) +
                                   " body must be a JSON object, got " +
                                   std::string(JsonTypeName(root.type())));
  }
  const auto type = static_cast<EventType>(static_cast<int>(endpoint));
  Event event;
  std::string error;
  if (BuildEvent(st, root, type, nullptr, received_at_us, options, &event, &out->write_key,
                 &error)) {
    out->events.push_back(std::move(event));
  } else {
    out->rejected.push_back({0, std::move(error), Truncated(body, options.max_event_bytes)});
  }
  return Status::OK();
}

Status ParseBatch(ThreadState& st, std::string_view body, int64_t received_at_us,
                  const ParseOptions& options, ParseOutput* out) {
  dom::element root;
  if (auto err = ParseJson(st, body, &root)) {
    return Status::InvalidArgument(JsonErrorMessage("body", body, err));
  }
  if (root.type() != dom::element_type::OBJECT) {
    return Status::InvalidArgument(
        "a /v1/batch body must be a JSON object like {\"batch\":[...]}, got " +
        std::string(JsonTypeName(root.type())));
  }
  Slot batch, sent_at, context, write_key;
  for (dom::key_value_pair field : dom::object(root)) {
    Slot* slot = field.key == "batch"      ? &batch
                 : field.key == "sentAt"   ? &sent_at
                 : field.key == "context"  ? &context
                 : field.key == "writeKey" ? &write_key
                                           : nullptr;
    if (slot) {
      slot->value = field.value;
      slot->present = field.value.type() != dom::element_type::NULL_VALUE;
    }
  }
  if (!batch.present) {
    return Status::InvalidArgument("a /v1/batch body needs a \"batch\" array of events");
  }
  dom::array events;
  if (batch.value.get_array().get(events) != simdjson::SUCCESS) {
    return Status::InvalidArgument("\"batch\" must be a JSON array of events, got " +
                                   std::string(JsonTypeName(batch.value.type())));
  }
  const size_t count = events.size();
  if (count > options.max_batch_events) return TooManyEvents(count, options);

  std::string_view key;
  if (write_key.present && write_key.value.get_string().get(key) == simdjson::SUCCESS) {
    out->write_key.assign(key);
  }
  BatchDefaults defaults;
  std::string error;
  if (!ReadTime(sent_at, "sentAt", &defaults.sent_at_us, &error)) {
    defaults.sent_at_error = "batch " + error;
  }
  st.batch_context.clear();
  if (context.present) {
    if (context.value.type() == dom::element_type::OBJECT) {
      AppendValue(&st.batch_context, context.value);
      defaults.has_context = true;
    } else {
      defaults.context_error = "batch \"context\" must be a JSON object, got " +
                               std::string(JsonTypeName(context.value.type()));
    }
  }
  out->events.reserve(count);
  size_t index = 0;
  for (dom::element v : events) {
    AddElement(st, v, index++, &defaults, received_at_us, options, out);
  }
  return Status::OK();
}

Status ParseArray(ThreadState& st, std::string_view body, int64_t received_at_us,
                  const ParseOptions& options, ParseOutput* out) {
  dom::element root;
  if (auto err = ParseJson(st, body, &root)) {
    return Status::InvalidArgument(JsonErrorMessage("body", body, err));
  }
  dom::array events;
  if (root.get_array().get(events) != simdjson::SUCCESS) {
    return Status::InvalidArgument("body must be a JSON array of events, got " +
                                   std::string(JsonTypeName(root.type())));
  }
  const size_t count = events.size();
  if (count > options.max_batch_events) return TooManyEvents(count, options);
  out->events.reserve(count);
  size_t index = 0;
  for (dom::element v : events) {
    AddElement(st, v, index++, nullptr, received_at_us, options, out);
  }
  return Status::OK();
}

struct Line {
  std::string_view text;
  size_t number;  // 1-based line number in the body
};

Status ParseNdjson(ThreadState& st, std::string_view body, int64_t received_at_us,
                   const ParseOptions& options, ParseOutput* out) {
  std::vector<Line> lines;
  size_t number = 0;
  for (size_t pos = 0; pos < body.size();) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    ++number;
    pos = nl + 1;
    while (!line.empty() && IsJsonSpace(line.front())) line.remove_prefix(1);
    while (!line.empty() && IsJsonSpace(line.back())) line.remove_suffix(1);
    if (!line.empty()) lines.push_back({line, number});
  }
  if (lines.empty()) {
    return Status::InvalidArgument(
        "body is empty: expected a JSON array or one JSON object per line");
  }
  if (lines.size() > options.max_batch_events) return TooManyEvents(lines.size(), options);

  out->events.reserve(lines.size());
  size_t valid_json = 0;
  std::string first_error;
  for (size_t index = 0; index < lines.size(); ++index) {
    const Line& line = lines[index];
    dom::element v;
    if (auto err = ParseJson(st, line.text, &v)) {
      std::string message = JsonErrorMessage("line " + std::to_string(line.number), line.text, err);
      if (index == 0 && lines.size() > 1) {
        // Perhaps one pretty-printed object rather than NDJSON.
        dom::element whole;
        if (ParseJson(st, body, &whole) == simdjson::SUCCESS &&
            whole.type() == dom::element_type::OBJECT) {
          AddElement(st, whole, 0, nullptr, received_at_us, options, out, body);
          return Status::OK();
        }
      }
      if (first_error.empty()) first_error = message;
      out->rejected.push_back(
          {index, EventPrefix(index) + message, Truncated(line.text, options.max_event_bytes)});
      continue;
    }
    ++valid_json;
    AddElement(st, v, index, nullptr, received_at_us, options, out, line.text);
  }
  if (valid_json == 0) {
    out->events.clear();
    out->rejected.clear();
    return Status::InvalidArgument("body is not JSON or NDJSON: " + first_error);
  }
  return Status::OK();
}

}  // namespace

Status Parse(Endpoint endpoint, std::string_view body, int64_t received_at_us,
             const ParseOptions& options, ParseOutput* out) {
  out->events.clear();
  out->rejected.clear();
  out->write_key.clear();
  ThreadState& st = State();
  Status status;
  switch (endpoint) {
    case Endpoint::kBatch:
      status = ParseBatch(st, body, received_at_us, options, out);
      break;
    case Endpoint::kEvents: {
      size_t first = 0;
      while (first < body.size() && IsJsonSpace(body[first])) ++first;
      status = first < body.size() && body[first] == '['
                   ? ParseArray(st, body, received_at_us, options, out)
                   : ParseNdjson(st, body, received_at_us, options, out);
      break;
    }
    default:
      status = ParseSingle(st, endpoint, body, received_at_us, options, out);
      break;
  }
  if (st.parser.capacity() > kMaxRetainedParserCapacity) st = ThreadState();
  for (auto& r : out->rejected) r.reason = std::string(RejectionReason(r.error));
  return status;
}

std::string_view RejectionReason(std::string_view error) {
  // Batch and array errors start with "event N: ".
  if (error.starts_with("event ")) {
    size_t colon = error.find(": ");
    if (colon != std::string_view::npos) error.remove_prefix(colon + 2);
  }
  auto has = [&](std::string_view s) { return error.find(s) != std::string_view::npos; };
  if (error.starts_with("batch ")) return "bad_batch_field";
  if (has("not valid JSON")) return "not_json";
  if (has("over max_event_bytes")) return "too_large";
  if (error.starts_with("\"messageId\"")) return "bad_message_id";
  if (error.starts_with("\"timestamp\"") || error.starts_with("\"sentAt\"") ||
      error.starts_with("\"originalTimestamp\"")) {
    return "bad_timestamp";
  }
  if (error.starts_with("\"type\"") || error.starts_with("needs a \"type\"")) return "bad_type";
  if (error.starts_with("needs \"userId\"")) return "missing_user";
  if (error.starts_with("track event needs")) return "missing_event";
  if (error.starts_with("group event needs")) return "missing_group_id";
  if (error.starts_with("alias event needs")) return "missing_previous_id";
  if (has("must be a JSON object")) return "not_object";
  return "bad_field";
}

}  // namespace sluice::event
