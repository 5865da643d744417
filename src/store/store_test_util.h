// Events for hot store tests (header-only): realistic rows and batches of them.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "event/event.h"
#include "event/parser.h"
#include "store/hot_store.h"

namespace sluice::store::testing {

inline constexpr int64_t kSecond = 1'000'000;
inline constexpr int64_t kMinute = 60 * kSecond;
inline constexpr int64_t kT0 = 1714564800LL * kSecond;  // 2024-05-01T12:00:00Z
inline constexpr int64_t kWindow = 10 * kMinute;
inline constexpr int64_t kW1 = kT0, kW2 = kT0 + kWindow, kW3 = kT0 + 2 * kWindow;

// 96 hex digits that differ per id, so that stored events do not all compress to nothing.
inline std::string Token(const std::string& id) {
  std::string out;
  for (int k = 0; k < 6; ++k) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(id + char('a' + k)));
    out += buf;
  }
  return out;
}

// A realistic event: nested properties and a full context (~1.5 KB).
inline event::Event MakeEvent(const std::string& id, int64_t received_at_us, int sku = 0) {
  event::Event e;
  e.event_id = id;
  e.type = "track";
  e.event = "Product Viewed";
  e.user_id = "user-" + std::to_string(sku % 7);
  e.anonymous_id = "anon-" + id;
  e.event_time_us = received_at_us - 1500;
  e.sent_at_us = received_at_us - 700;
  e.received_at_us = received_at_us;
  e.properties =
      R"({"sku":"sku-)" + std::to_string(sku) +
      R"(","price":12.5,"currency":"EUR","tags":["new","sale"],"variant":{"color":"blue","size":42},)"
      R"("token":")" +
      Token(id) + R"("})";
  e.context =
      R"({"library":{"name":"analytics.js","version":"4.1.0"},"page":{"path":"/products/)" +
      std::to_string(sku) +
      R"(","url":"https://shop.example.com/products/1","title":"A product"},)"
      R"("userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) )"
      R"(Chrome/124.0 Safari/537.36","ip":"203.0.113.7","locale":"de-DE",)"
      R"("campaign":{"name":"spring","source":"newsletter","medium":"email"},)"
      R"("screen":{"width":1920,"height":1080,"density":2}})";
  e.source = "web";
  return e;
}

// `count` events prefix<first>…, received step_us apart from start_us, ending at end_offset.
inline Batch EventsBatch(uint64_t end_offset, const std::string& prefix, int first, int count,
                         int64_t start_us, int64_t step_us) {
  Batch b;
  b.end_offset = end_offset;
  for (int i = first; i < first + count; ++i) {
    b.events.push_back(MakeEvent(prefix + std::to_string(i), start_us + (i - first) * step_us, i));
  }
  return b;
}

// Where the exporter puts window `start_us` under the object store root `objects`, made if
// missing (DESIGN.md): events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet.
inline std::string ParquetPath(const std::string& objects, int64_t start_us) {
  const std::string t = event::FormatTimestamp(start_us);  // 2024-05-01T12:00:00.000000Z
  const std::string dir = objects + "/events/dt=" + t.substr(0, 10) + "/hour=" + t.substr(11, 2);
  std::filesystem::create_directories(dir);
  std::string compact;
  for (char c : t.substr(0, 16)) {
    if (c != '-' && c != ':') compact += c;
  }
  return dir + "/events-" + compact + "Z-disk.parquet";
}

}  // namespace sluice::store::testing
