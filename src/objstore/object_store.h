// ObjectStore: where closed windows go as Parquet files (DESIGN.md "Files in the object
// store"). Keys are '/'-separated paths relative to the store's root, e.g.
// "events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet".
//
// Guarantees: Put is atomic for readers (a reader sees the old object or the whole new one,
// never part of it) and durable when it returns OK; a Put of an existing key replaces it.
// Every error carries the service's (or the OS's) message.
//
// Concurrency: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::objstore {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // implementation-defined version tag; LocalDir: size-mtime
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // "file:///var/lib/sluice/objects", "s3://bucket/prefix", …: for logs and the manifest.
  virtual std::string Url() const = 0;
  // Uploads the local file at `local_path` as `key`. The caller replaces or deletes the file
  // afterwards but does not write into it (LocalDir may have linked it into place).
  virtual Status PutFile(const std::string& key, const std::string& local_path) = 0;
  // Uploads `data` as `key` (small objects: manifest entries).
  virtual Status PutBytes(const std::string& key, const std::string& data) = 0;
  // Downloads `key` to the local file `local_path` (written to a temporary name, then renamed).
  virtual Status GetFile(const std::string& key, const std::string& local_path) = 0;
  virtual Result<std::string> GetBytes(const std::string& key) = 0;
  // NotFound when there is no such object.
  virtual Result<ObjectInfo> Head(const std::string& key) = 0;
  // Every object whose key starts with `prefix`, sorted by key.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  // OK when the object is gone (also when it never existed).
  virtual Status Delete(const std::string& key) = 0;
  // For stores whose objects are plain local files (LocalDir): the file's path, which DuckDB
  // can read directly. nullopt for remote stores.
  virtual std::optional<std::string> LocalPath(const std::string& key) const = 0;
};

// Settings of the remote stores that have a flag (`sluice serve --object-store-*`); empty or
// zero: the store's default, or the environment's (AWS_ENDPOINT_URL, AWS_REGION, …).
struct ObjectStoreOptions {
  std::string endpoint;              // S3-compatible endpoint (path-style) or Azure blob endpoint
  std::string region;                // S3 signing region
  uint64_t multipart_threshold = 0;  // files above this go up in parts (S3) or blocks (Azure)
  uint64_t part_size = 0;            // bytes per part or block
  int parallel_parts = 0;            // parts or blocks in flight per file
};

// Opens the store `url` names:
//   "file:///abs/dir" or a plain directory path → LocalDir (created if missing);
//   "s3://BUCKET[/PREFIX]" → S3 (credentials, region and endpoint from the AWS SDKs'
//     environment variables, overridden by `options`);
//   "az://CONTAINER[/PREFIX]" → AzureBlob (AZURE_STORAGE_CONNECTION_STRING, or
//     AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY).
// A remote store is checked with one request (its bucket or container must exist and the
// credentials may list it). InvalidArgument with a sentence for an unsupported or malformed
// URL or missing credentials; the service's error (with its message) when the check fails.
// Remote URLs are echoed without credentials.
Result<std::unique_ptr<ObjectStore>> MakeObjectStore(const std::string& url,
                                                     const ObjectStoreOptions& options = {});

}  // namespace sluice::objstore
