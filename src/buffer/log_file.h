// LogFileSystem: the small file layer DiskLog does all its I/O through (LevelDB's `Env`).
//
// It exists so tests can inject failures (a write or fdatasync returning EIO, a truncate that
// fails) and check what DiskLog does then; production uses the POSIX implementation from
// NewPosixLogFileSystem(). Every operation reports failure as an IOError whose message names
// the path and ends with strerror(errno); nothing throws.
//
// Concurrency: a LogFileSystem is thread-safe. A LogFile's Append/Sync/Truncate are called by
// one thread at a time (DiskLog's writer), while ReadAt and Size may run concurrently with them
// from other threads (pread on the same descriptor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::buffer {

// One open segment file. Destroying it closes the descriptor.
class LogFile {
 public:
  virtual ~LogFile() = default;

  // Writes `pieces`, in order, at the end of the file (O_APPEND), retrying partial writes.
  // On error any prefix of the data may have been written; the caller truncates it away.
  virtual Status Append(std::span<const std::string_view> pieces) = 0;
  // fdatasync: OK promises every byte appended before the call is on stable storage. After a
  // failure the state of the unsynced bytes is unknown (they may be lost even if a later Sync
  // succeeds), so the caller must not retry and assume success.
  virtual Status Sync() = 0;
  // Cuts the file to `size` bytes; the next Append writes at `size`. Not synced.
  virtual Status Truncate(uint64_t size) = 0;
  // Reads up to `n` bytes at `pos` into `dst`; `*read` < n only at end of file.
  virtual Status ReadAt(uint64_t pos, size_t n, char* dst, size_t* read) const = 0;
  virtual Result<uint64_t> Size() const = 0;
};

// Held while a process owns a directory; destroying it releases the lock.
class DirLock {
 public:
  virtual ~DirLock() = default;
};

class LogFileSystem {
 public:
  virtual ~LogFileSystem() = default;

  // Creates `dir` and any missing parents (mkdir -p). OK if it exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Names (not paths) of the entries in `dir`, excluding "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Opens an existing file for reading and appending. NotFound if it does not exist.
  virtual Result<std::unique_ptr<LogFile>> OpenLogFile(const std::string& path) = 0;
  // Creates a new, empty file for reading and appending. AlreadyExists if it exists.
  virtual Result<std::unique_ptr<LogFile>> CreateLogFile(const std::string& path) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // fsync on the directory, so that creations, removals and renames in it are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Whole contents of a small file. NotFound if it does not exist.
  virtual Result<std::string> ReadSmallFile(const std::string& path) = 0;
  // Replaces `path` with `contents` atomically (write `path`.tmp, then rename over `path`).
  // Not fsynced: after a crash the file may hold the old contents, the new ones, or be empty.
  virtual Status ReplaceSmallFile(const std::string& path, std::string_view contents) = 0;
  // Takes an exclusive advisory lock (flock) on `path`, creating it if needed.
  // Unavailable if another process (or another open DiskLog) holds it.
  virtual Result<std::unique_ptr<DirLock>> LockFile(const std::string& path) = 0;
};

// The real file system: open/writev/fdatasync/ftruncate/pread/unlink/flock.
std::shared_ptr<LogFileSystem> NewPosixLogFileSystem();

}  // namespace sluice::buffer
