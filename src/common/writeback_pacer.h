// WritebackPacer: keeps other writers' dirty pages from piling up into one large flush.
//
// Why: a DuckDB checkpoint writes hundreds of MB to hot.duckdb and a window export writes a
// Parquet file of ~1 GB, both through the page cache. With Linux's default
// vm.dirty_background_ratio (10% of RAM) those pages stay dirty until the writer's fsync or
// the flusher sends them all at once, and for that second or so the disk queue is full: the
// buffer's fdatasync, which every acknowledgement waits for, takes 50-250 ms instead of ~1 ms
// (issue 7: 70 of 71,236 fdatasyncs over 50 ms at 25,000 events/s, and an ack p99 of 82 ms;
// with vm.dirty_background_bytes = 32 MB, p99 27 ms). A writer we do not control (DuckDB)
// cannot be told to write behind, so this thread asks the kernel to start writing back the
// files in `dirs` every `interval`: sync_file_range(SYNC_FILE_RANGE_WRITE) queues the dirty
// pages for writeback and returns without waiting, so the data reaches the disk in small
// steps while it is written, and the final fsync finds little left to do.
//
// Only regular files directly in each of `dirs` are paced (not subdirectories: the buffer's
// segments are fdatasync'ed by their writer anyway). Missing dirs are skipped, files that
// vanish between listing and opening too.
//
// Concurrency: Start() runs the thread until Stop() or destruction; PaceOnce() is what one
// pass does (tests call it) and may run on any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace sluice {

struct WritebackPacerOptions {
  std::vector<std::string> dirs;
  std::chrono::milliseconds interval{100};
};

class WritebackPacer {
 public:
  explicit WritebackPacer(WritebackPacerOptions options);
  ~WritebackPacer();  // Stop()
  WritebackPacer(const WritebackPacer&) = delete;
  WritebackPacer& operator=(const WritebackPacer&) = delete;

  // Starts the thread (a programmer error twice, or with an interval of 0).
  void Start();
  // Joins the thread. Idempotent.
  void Stop();

  // One pass: starts writeback of every regular file directly in the dirs. Returns how many
  // files it asked the kernel to write back.
  int PaceOnce() const;

 private:
  void Loop(const std::stop_token& stop);

  const WritebackPacerOptions options_;
  std::mutex wake_mu_;
  std::condition_variable_any wake_cv_;
  std::jthread thread_;
};

// Starts writeback of [0, end of file) of `fd` without waiting (sync_file_range WRITE). For a
// writer of a large file (a copy, a download) to call every few MB, so its own dirty pages go
// out as it writes. Errors are ignored: it is advice, the writer's fsync is what is durable.
void StartWriteback(int fd);

}  // namespace sluice
