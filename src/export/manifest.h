// The export manifest and the object store layout (DESIGN.md "Files in the object store").
//
// Layout, for a window of received_at starting at START (UTC) and a hot-store shard SHARD:
//   events/dt=YYYY-MM-DD/hour=HH/events-YYYYMMDDTHHMMZ-SHARD.parquet   the window's rows
//   _manifest/events-YYYYMMDDTHHMMZ-SHARD.json                           its manifest entry
// Both names depend only on the window and shard, so a rerun overwrites rather than
// duplicates. The entry is written after the Parquet file is in place and verified, so an
// entry always describes a complete file (a reader that finds a file without an entry is
// looking at an export that did not finish, or at its retry in progress).
//
// Entry JSON: {"window_start":"2024-05-01T12:00:00Z","window_end":"2024-05-01T12:10:00Z",
//   "key":"events/…","rows":N,"bytes":N,"sha256":"<64 hex>","exported_at":"<ISO UTC>"}.
// Readers ignore fields they do not know, so fields can be added.
//
// Concurrency: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "objstore/object_store.h"

namespace sluice::exporter {

inline constexpr std::string_view kEventsPrefix = "events/";
inline constexpr std::string_view kManifestPrefix = "_manifest/";

struct ManifestEntry {
  int64_t window_start_us = 0;  // microseconds since the epoch, UTC
  int64_t window_end_us = 0;
  std::string key;  // the Parquet object's key
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;  // the Parquet file's SHA-256, 64 lowercase hex digits
  int64_t exported_at_us = 0;
  bool operator==(const ManifestEntry&) const = default;
};

// OK for a shard name usable in keys: 1 to 64 of [A-Za-z0-9_-]. InvalidArgument otherwise.
Status ValidateShard(std::string_view shard);

// "20240501T1200Z" for a window starting at 2024-05-01 12:00 UTC; a window that starts
// inside a minute (sub-minute intervals, for tests) shows its seconds: "20240501T120030Z".
std::string WindowStamp(int64_t window_start_us);
// "events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet".
std::string ParquetKey(int64_t window_start_us, std::string_view shard);
// "_manifest/events-20240501T1200Z-disk.json".
std::string ManifestKey(int64_t window_start_us, std::string_view shard);

// "2024-05-01T12:00:00Z", with ".ffffffZ" microseconds when not a whole second.
std::string FormatIsoUtc(int64_t micros);

std::string ToJson(const ManifestEntry& entry);
// InvalidArgument naming the problem for text that is not an entry (not JSON, a field missing
// or of the wrong type, a bad sha256 or time).
Result<ManifestEntry> FromJson(std::string_view json);

// Every entry under _manifest/ (objects ending in .json), sorted by window start then key.
// Corruption naming the object for an entry that does not parse; the store's error when
// listing or reading fails.
Result<std::vector<ManifestEntry>> ReadManifest(objstore::ObjectStore& store);

}  // namespace sluice::exporter
