// LocalDir: the embedded ObjectStore — objects are plain files under a root directory, the key
// being the path below the root ("events/dt=2024-05-01/hour=12/events-…-disk.parquet" is
// ROOT/events/dt=2024-05-01/hour=12/events-…-disk.parquet), so DuckDB, Spark or an operator's
// shell read the Hive layout directly.
//
// Guarantees:
//   - Put (PutFile, PutBytes) and GetFile are atomic and durable: the bytes go to a temporary
//     file in the destination's directory, which is fsync()ed and rename()d over the
//     destination, and then the directory is fsync()ed (and every directory the Put created,
//     through its parent). A reader sees the old object or the whole new one, never part of
//     one; after OK the object survives a crash. A failed Put removes its temporary file and
//     leaves the old object (if any) untouched.
//   - Keys are validated before any file is touched: InvalidArgument for an empty key, an
//     absolute path, an empty segment ("a//b", a trailing '/'), a "." or ".." segment, a NUL
//     byte, a key over 1024 bytes, or a segment starting with ".sluice-tmp" (reserved for
//     temporary files). So no key reaches outside the root.
//   - Errors are Status with the OS's strerror and the path concerned; NotFound when the
//     object does not exist.
//
// Concurrency: thread-safe; no state is shared between calls but an atomic counter naming
// temporary files. Concurrent Puts of one key each replace it whole; the last rename wins.
//
// Limits: a crash during a Put can leave a ".sluice-tmp-*" file beside the destination; List
// and Head never report such files (remove them at leisure). Delete does not remove
// directories left empty. Symbolic links under the root are followed.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "objstore/object_store.h"

namespace sluice::objstore {

// OK when `key` is a valid object key (see above); InvalidArgument with a sentence otherwise.
Status ValidateKey(std::string_view key);

class LocalDir final : public ObjectStore {
 public:
  // Opens the store rooted at `root` (made absolute; created with its parents if missing).
  // IOError (with strerror and the path) when it cannot be created or is not a directory.
  static Result<std::unique_ptr<LocalDir>> Open(const std::string& root);

  LocalDir(const LocalDir&) = delete;
  LocalDir& operator=(const LocalDir&) = delete;

  std::string Url() const override;  // "file:///abs/root"
  // Hard-links `local_path` into place when it is on the root's file system (no copy), copies
  // it otherwise: either way, replace or delete `local_path` afterwards, never write into it
  // (that would change the object too).
  Status PutFile(const std::string& key, const std::string& local_path) override;
  Status PutBytes(const std::string& key, const std::string& data) override;
  // `local_path`'s directory must exist; the file is written through a temporary name beside
  // it, fsync()ed and renamed into place.
  Status GetFile(const std::string& key, const std::string& local_path) override;
  Result<std::string> GetBytes(const std::string& key) override;
  // etag is "<size>-<mtime in ns>".
  Result<ObjectInfo> Head(const std::string& key) override;
  // `prefix` may end inside a segment ("events/dt=2024-05"); "" lists everything. Regular
  // files only. InvalidArgument for an absolute prefix or one with a "." or ".." segment.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Status Delete(const std::string& key) override;
  // ROOT/key; nullopt for an invalid key.
  std::optional<std::string> LocalPath(const std::string& key) const override;

  const std::string& root() const { return root_; }

 private:
  explicit LocalDir(std::string root) : root_(std::move(root)) {}
  std::string PathOf(std::string_view key) const;
  // A fresh temporary file name in directory `dir`.
  std::string TempPathIn(const std::string& dir);

  const std::string root_;  // absolute, no trailing '/' (except for "/" itself)
  std::atomic<uint64_t> next_temp_{0};
};

}  // namespace sluice::objstore
