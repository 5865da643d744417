#include "export/manifest.h"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/json_writer.h"
#include "event/parser.h"

namespace sluice::exporter {
namespace {

struct CivilTime {
  int year;
  unsigned month, day;
  int64_t hour, minute;
};

CivilTime ToCivil(int64_t micros) {
  using namespace std::chrono;
  const sys_time<microseconds> tp{microseconds{micros}};
  const sys_days day = floor<days>(tp);
  const year_month_day ymd{day};
  const int64_t minutes = duration_cast<std::chrono::minutes>(tp - day).count();
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), minutes / 60, minutes % 60};
}

std::string Format(const char* fmt, const CivilTime& t) {
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), fmt, t.year, t.month, t.day,
                        static_cast<int>(t.hour), static_cast<int>(t.minute));
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, int{sizeof(buf)} - 1)));
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Status ValidateShard(std::string_view shard) {
  bool ok = !shard.empty() && shard.size() <= 64 &&
            std::all_of(shard.begin(), shard.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '_' || c == '-';
            });
  if (ok) return Status::OK();
  return Status::InvalidArgument("invalid export shard name \"" +
                                 std::string(shard.substr(0, 100)) +
                                 "\": use 1 to 64 letters, digits, '_' or '-'");
}

std::string WindowStamp(int64_t window_start_us) {
  std::string stamp = Format("%04d%02u%02uT%02d%02d", ToCivil(window_start_us));
  // Sub-minute windows (tests use them) show their seconds; whole minutes keep DESIGN.md's
  // YYYYMMDDTHHMMZ.
  const int64_t micros_in_minute = ((window_start_us % 60'000'000) + 60'000'000) % 60'000'000;
  if (micros_in_minute != 0) {
    char sec[8];
    std::snprintf(sec, sizeof(sec), "%02d", static_cast<int>(micros_in_minute / 1'000'000));
    stamp += sec;
  }
  return stamp + "Z";
}

std::string ParquetKey(int64_t window_start_us, std::string_view shard) {
  const CivilTime t = ToCivil(window_start_us);
  std::string key(kEventsPrefix);
  key += Format("dt=%04d-%02u-%02u/hour=%02d/", t);
  key += "events-";
  key += WindowStamp(window_start_us);
  key += '-';
  key += shard;
  key += ".parquet";
  return key;
}

std::string ManifestKey(int64_t window_start_us, std::string_view shard) {
  std::string key(kManifestPrefix);
  key += "events-";
  key += WindowStamp(window_start_us);
  key += '-';
  key += shard;
  key += ".json";
  return key;
}

std::string FormatIsoUtc(int64_t micros) {
  std::string s = event::FormatTimestamp(micros);
  constexpr std::string_view kWholeSecond = ".000000Z";
  if (s.ends_with(kWholeSecond)) s.replace(s.size() - kWholeSecond.size(), kWholeSecond.size(), "Z");
  return s;
}

std::string ToJson(const ManifestEntry& entry) {
  JsonWriter w;
  w.BeginObject()
      .Key("window_start").String(FormatIsoUtc(entry.window_start_us))
      .Key("window_end").String(FormatIsoUtc(entry.window_end_us))
      .Key("key").String(entry.key)
      .Key("rows").Uint(entry.rows)
      .Key("bytes").Uint(entry.bytes)
      .Key("sha256").String(entry.sha256)
      .Key("exported_at").String(FormatIsoUtc(entry.exported_at_us))
      .EndObject();
  std::string out = w.Take();
  out += '\n';
  return out;
}

Result<ManifestEntry> FromJson(std::string_view json) {
  namespace dom = simdjson::dom;
  dom::parser parser;
  simdjson::padded_string padded(json);
  dom::element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string("manifest entry is not JSON: ") +
                                   simdjson::error_message(err));
  }
  dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return Status::InvalidArgument("manifest entry is not a JSON object");
  }
  auto missing = [](std::string_view field, std::string_view type) {
    return Status::InvalidArgument("manifest entry: field \"" + std::string(field) +
                                   "\" is missing or not " + std::string(type));
  };
  auto get_string = [&](std::string_view field, std::string* out) -> Status {
    std::string_view v;
    if (obj.at_key(field).get(v) != simdjson::SUCCESS) return missing(field, "a string");
    *out = std::string(v);
    return Status::OK();
  };
  auto get_uint = [&](std::string_view field, uint64_t* out) -> Status {
    if (obj.at_key(field).get(*out) != simdjson::SUCCESS) {
      return missing(field, "a non-negative integer");
    }
    return Status::OK();
  };
  auto get_time = [&](std::string_view field, int64_t* out) -> Status {
    std::string text;
    SLUICE_RETURN_IF_ERROR(get_string(field, &text));
    Result<int64_t> t = event::ParseTimestamp(text);
    if (!t.ok()) return t.status().WithContext("manifest entry: field \"" + std::string(field) + "\"");
    *out = *t;
    return Status::OK();
  };

  ManifestEntry e;
  SLUICE_RETURN_IF_ERROR(get_time("window_start", &e.window_start_us));
  SLUICE_RETURN_IF_ERROR(get_time("window_end", &e.window_end_us));
  SLUICE_RETURN_IF_ERROR(get_string("key", &e.key));
  SLUICE_RETURN_IF_ERROR(get_uint("rows", &e.rows));
  SLUICE_RETURN_IF_ERROR(get_uint("bytes", &e.bytes));
  SLUICE_RETURN_IF_ERROR(get_string("sha256", &e.sha256));
  SLUICE_RETURN_IF_ERROR(get_time("exported_at", &e.exported_at_us));
  if (e.sha256.size() != 64 || !IsLowerHex(e.sha256)) {
    return Status::InvalidArgument("manifest entry: sha256 \"" + e.sha256.substr(0, 80) +
                                   "\" is not 64 lowercase hex digits");
  }
  if (e.window_end_us <= e.window_start_us) {
    return Status::InvalidArgument("manifest entry: window_end is not after window_start");
  }
  return e;
}

Result<std::vector<ManifestEntry>> ReadManifest(objstore::ObjectStore& store) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<objstore::ObjectInfo> objects,
                          store.List(std::string(kManifestPrefix)));
  std::vector<ManifestEntry> entries;
  entries.reserve(objects.size());
  for (const objstore::ObjectInfo& info : objects) {
    if (!info.key.ends_with(".json")) continue;
    Result<std::string> text = store.GetBytes(info.key);
    // Deleted between List and Get: it is no longer part of the manifest.
    if (text.status().code() == StatusCode::kNotFound) continue;
    if (!text.ok()) return text.status().WithContext("read manifest entry " + info.key);
    Result<ManifestEntry> entry = FromJson(*text);
    if (!entry.ok()) {
      return Status::Corruption("manifest entry " + store.Url() + "/" + info.key + ": " +
                                entry.status().message());
    }
    entries.push_back(std::move(entry).value());
  }
  std::sort(entries.begin(), entries.end(), [](const ManifestEntry& a, const ManifestEntry& b) {
    return a.window_start_us != b.window_start_us ? a.window_start_us < b.window_start_us
                                                  : a.key < b.key;
  });
  return entries;
}

}  // namespace sluice::exporter
