#include "buffer/disk_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "common/crc32c.h"

namespace sluice::buffer {
namespace {

constexpr size_t kHeaderBytes = 8;             // u32 length + u32 CRC32C
constexpr size_t kReadChunkBytes = 256 << 10;  // pread size when scanning or reading
constexpr std::string_view kSegmentSuffix = ".log";
constexpr size_t kSegmentNameDigits = 20;
constexpr const char* kCommittedFile = "committed.offset";
constexpr const char* kLockFile = "LOCK";

void EncodeU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t DecodeU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// CRC32C over the 4 length bytes followed by the payload.
uint32_t RecordCrc(const char* length_bytes, const char* payload, size_t n) {
  return crc32c::Extend(crc32c::Extend(0, length_bytes, 4), payload, n);
}

// "00000000000000000042.log" -> 42; nullopt for any other name.
std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() ||
      name.substr(kSegmentNameDigits) != kSegmentSuffix) {
    return std::nullopt;
  }
  uint64_t base = 0;
  const char* end = name.data() + kSegmentNameDigits;
  auto [ptr, ec] = std::from_chars(name.data(), end, base);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return base;
}

std::string At(const std::string& path, uint64_t pos) {
  return "segment " + path + " at byte " + std::to_string(pos);
}

// Reads a file through a buffer of kReadChunkBytes, never past `limit`.
class ChunkReader {
 public:
  ChunkReader(const LogFile& file, const std::string& path, uint64_t limit)
      : file_(file), path_(path), limit_(limit) {}

  // The bytes [pos, pos + n), valid until the next call. The caller keeps pos + n <= limit.
  Result<std::string_view> Get(uint64_t pos, size_t n) {
    if (pos >= buf_pos_ && pos + n <= buf_pos_ + buf_len_) {
      return std::string_view(buf_.get() + (pos - buf_pos_), n);
    }
    SLUICE_CHECK(pos + n <= limit_);
    size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunkBytes, limit_ - pos));
    want = std::max(want, n);
    if (want > buf_cap_) {
      buf_ = std::make_unique_for_overwrite<char[]>(want);
      buf_cap_ = want;
    }
    size_t got = 0;
    Status st = file_.ReadAt(pos, want, buf_.get(), &got);
    if (!st.ok()) {
      buf_len_ = 0;
      return st;
    }
    buf_pos_ = pos;
    buf_len_ = got;
    if (got < n) {
      return Status::Corruption(At(path_, pos + got) + ": file ends before the bytes it held");
    }
    return std::string_view(buf_.get(), n);
  }

 private:
  const LogFile& file_;
  const std::string& path_;
  const uint64_t limit_;
  std::unique_ptr<char[]> buf_;
  size_t buf_cap_ = 0;
  uint64_t buf_pos_ = 0;
  size_t buf_len_ = 0;
};

struct ScanResult {
  uint64_t records = 0;
  uint64_t good_bytes = 0;  // end of the last valid record
  std::string damage;       // what is wrong at good_bytes; empty when the whole file is valid
};

// Walks every record of a segment of `size` bytes, checking each CRC.
Result<ScanResult> ScanSegment(const LogFile& file, const std::string& path, uint64_t size) {
  ChunkReader reader(file, path, size);
  ScanResult r;
  uint64_t pos = 0;
  while (pos < size) {
    if (size - pos < kHeaderBytes) {
      r.damage = "incomplete record header of " + std::to_string(size - pos) + " bytes";
      break;
    }
    SLUICE_ASSIGN_OR_RETURN(std::string_view header, reader.Get(pos, kHeaderBytes));
    std::array<char, kHeaderBytes> h{};
    std::copy(header.begin(), header.end(), h.begin());
    uint32_t len = DecodeU32(h.data());
    if (len > size - pos - kHeaderBytes) {
      r.damage = "record length " + std::to_string(len) + " runs past the end of the file";
      break;
    }
    SLUICE_ASSIGN_OR_RETURN(std::string_view payload, reader.Get(pos + kHeaderBytes, len));
    if (RecordCrc(h.data(), payload.data(), payload.size()) != DecodeU32(h.data() + 4)) {
      r.damage = "CRC mismatch in a record of " + std::to_string(len) + " bytes";
      break;
    }
    pos += kHeaderBytes + len;
    ++r.records;
  }
  r.good_bytes = pos;
  return r;
}

// The position of the first byte after `damage_pos` where a whole record with a valid CRC
// starts, if any. Used to tell a torn tail (nothing valid after the damage) from a damaged
// record in the middle of the log.
Result<std::optional<uint64_t>> FindValidRecordAfter(const LogFile& file, const std::string& path,
                                                     uint64_t damage_pos, uint64_t size) {
  uint64_t start = damage_pos + 1;
  if (start + kHeaderBytes > size) return std::optional<uint64_t>();
  std::string tail(static_cast<size_t>(size - start), '\0');
  size_t got = 0;
  SLUICE_RETURN_IF_ERROR(file.ReadAt(start, tail.size(), tail.data(), &got));
  if (got != tail.size()) return Status::IOError(path + " changed size during recovery");
  for (size_t q = 0; q + kHeaderBytes <= tail.size(); ++q) {
    uint32_t len = DecodeU32(tail.data() + q);
    if (len > tail.size() - q - kHeaderBytes) continue;
    if (RecordCrc(tail.data() + q, tail.data() + q + kHeaderBytes, len) ==
        DecodeU32(tail.data() + q + 4)) {
      return std::optional<uint64_t>(start + q);
    }
  }
  return std::optional<uint64_t>();
}

}  // namespace

struct DiskLog::Segment {
  Segment(uint64_t b, std::string p, std::unique_ptr<LogFile> f)
      : base(b), path(std::move(p)), file(std::move(f)), end_offset(b) {}

  const uint64_t base;  // offset of the first record
  const std::string path;
  const std::unique_ptr<LogFile> file;
  // Below: protected by DiskLog::mu_. Readers read only [0, durable_bytes).
  uint64_t durable_bytes = 0;  // bytes of durable records
  uint64_t end_offset;         // offset after the last durable record
};

struct DiskLog::Pending {
  std::vector<std::string> records;
  AppendCallback done;
  uint64_t bytes = 0;  // framed bytes
};

// A segment the writer appended to during the current group, with what to undo on failure.
struct DiskLog::Touched {
  std::shared_ptr<Segment> seg;
  uint64_t bytes_before = 0;
  bool created = false;  // created by this group: remove it on failure
  uint64_t bytes_after = 0;
  uint64_t end_after = 0;
};

DiskLog::DiskLog(DiskLogOptions options)
    : options_(std::move(options)),
      fs_(options_.file_system ? options_.file_system : NewPosixLogFileSystem()),
      fsync_seconds_(metrics::Default().GetHistogram(
          "sluice_buffer_fsync_seconds", "Time DiskLog spent in one fdatasync of a segment")),
      fsyncs_total_(metrics::Default().GetCounter("sluice_buffer_fsyncs_total",
                                                  "fdatasync calls made by DiskLog")),
      appended_records_(metrics::Default().GetCounter("sluice_buffer_appended_records_total",
                                                      "Records made durable by the buffer")),
      errors_full_(metrics::Default().GetCounter("sluice_buffer_append_errors_total",
                                                 "Appends the buffer refused or failed",
                                                 {{"reason", "full"}})),
      errors_io_(metrics::Default().GetCounter("sluice_buffer_append_errors_total",
                                               "Appends the buffer refused or failed",
                                               {{"reason", "io"}})),
      errors_closed_(metrics::Default().GetCounter("sluice_buffer_append_errors_total",
                                                   "Appends the buffer refused or failed",
                                                   {{"reason", "closed"}})) {}

Result<std::unique_ptr<DiskLog>> DiskLog::Open(const DiskLogOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("DiskLog needs a directory (dir)");
  if (options.segment_bytes == 0) {
    return Status::InvalidArgument("DiskLog segment_bytes must be greater than 0");
  }
  std::unique_ptr<DiskLog> log(new DiskLog(options));
  SLUICE_RETURN_IF_ERROR(log->Recover());
  log->writer_ = std::jthread([l = log.get()](std::stop_token stop) { l->WriterLoop(stop); });
  return log;
}

DiskLog::~DiskLog() { Close(); }

std::string DiskLog::SegmentPath(uint64_t base) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%020" PRIu64 ".log", base);
  return options_.dir + "/" + name;
}

Status DiskLog::Recover() {
  const std::string& dir = options_.dir;
  SLUICE_RETURN_IF_ERROR(fs_->CreateDir(dir));
  SLUICE_ASSIGN_OR_RETURN(lock_, fs_->LockFile(dir + "/" + kLockFile));

  std::optional<uint64_t> saved_committed;
  const std::string committed_path = dir + "/" + kCommittedFile;
  Result<std::string> text = fs_->ReadSmallFile(committed_path);
  if (text.ok()) {
    uint64_t v = 0;
    std::string_view s = *text;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty()) {
      saved_committed = v;
    } else {
      spdlog::warn("buffer: ignoring unreadable {} (it is advisory)", committed_path);
    }
  } else if (text.status().code() != StatusCode::kNotFound) {
    return text.status();
  }

  SLUICE_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir));
  std::vector<uint64_t> bases;
  for (const std::string& name : names) {
    if (auto base = ParseSegmentName(name)) bases.push_back(*base);
  }
  std::sort(bases.begin(), bases.end());

  std::string prev_path;
  uint64_t expected = 0;
  for (size_t i = 0; i < bases.size(); ++i) {
    const uint64_t base = bases[i];
    const bool last = i + 1 == bases.size();
    std::string path = SegmentPath(base);
    if (i > 0 && base != expected) {
      return Status::Corruption(
          "segment " + path + " starts at offset " + std::to_string(base) + " but " + prev_path +
          " before it ends at offset " + std::to_string(expected) +
          ": a segment file is missing, misnamed or cut short. Restore it from a backup, or "
          "move the segments before " +
          path + " out of " + dir + " to start from it (their records not yet loaded are lost)");
    }
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<LogFile> file, fs_->OpenLogFile(path));
    SLUICE_ASSIGN_OR_RETURN(uint64_t size, file->Size());
    SLUICE_ASSIGN_OR_RETURN(ScanResult scan, ScanSegment(*file, path, size));
    if (!scan.damage.empty()) {
      if (!last) {
        return Status::Corruption(
            At(path, scan.good_bytes) + ": " + scan.damage +
            ". It is not the last segment, so this is not a torn write and recovery will not "
            "drop it. Restore the file from a backup, or move it and every segment before it "
            "out of " +
            dir + " to start without them (their records not yet loaded are lost)");
      }
      SLUICE_ASSIGN_OR_RETURN(std::optional<uint64_t> valid_after,
                              FindValidRecordAfter(*file, path, scan.good_bytes, size));
      if (valid_after) {
        return Status::Corruption(
            At(path, scan.good_bytes) + ": " + scan.damage +
            ", but a valid record follows at "
            "byte " +
            std::to_string(*valid_after) +
            ", so this is not a torn write and recovery will not drop it. Restore the file from "
            "a backup, or cut it at the damage to start without the records from there on "
            "(truncate -s " +
            std::to_string(scan.good_bytes) + " " + path + ")");
      }
      SLUICE_RETURN_IF_ERROR(file->Truncate(scan.good_bytes));
      if (options_.fsync) SLUICE_RETURN_IF_ERROR(file->Sync());
      spdlog::warn(
          "buffer: {}: dropped {} bytes of torn tail at byte {} ({}), most likely a write cut "
          "short by a crash and so never acknowledged; the {} records before it are intact",
          path, size - scan.good_bytes, scan.good_bytes, scan.damage, scan.records);
    }
    auto seg = std::make_shared<Segment>(base, path, std::move(file));
    seg->durable_bytes = scan.good_bytes;
    seg->end_offset = base + scan.records;
    used_bytes_ += scan.good_bytes;
    expected = seg->end_offset;
    prev_path = path;
    segments_.emplace(base, std::move(seg));
  }

  if (segments_.empty()) {
    // A new log, or one whose segments were all removed: keep offsets moving forward.
    uint64_t base = saved_committed.value_or(0);
    std::string path = SegmentPath(base);
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<LogFile> file, fs_->CreateLogFile(path));
    if (options_.fsync) SLUICE_RETURN_IF_ERROR(fs_->SyncDir(dir));
    segments_.emplace(base, std::make_shared<Segment>(base, path, std::move(file)));
  }

  active_ = segments_.rbegin()->second;
  active_bytes_ = active_->durable_bytes;
  write_next_ = visible_next_ = active_->end_offset;
  committed_ = std::max(saved_committed.value_or(0), segments_.begin()->first);
  if (committed_ > visible_next_) {
    spdlog::warn("buffer: {} says {} but the log ends at offset {}; using {}", committed_path,
                 committed_, visible_next_, visible_next_);
    committed_ = visible_next_;
  }
  return DeleteCommittedSegments();
}

void DiskLog::FailInline(AppendCallback& done, Status status, metrics::Counter& counter) {
  counter.Inc();
  done(std::move(status));
}

void DiskLog::Append(std::vector<std::string> records, AppendCallback done) {
  uint64_t bytes = 0;
  for (const std::string& r : records) {
    if (r.size() > std::numeric_limits<uint32_t>::max()) {
      done(Status::InvalidArgument("a record of " + std::to_string(r.size()) +
                                   " bytes is larger than DiskLog can frame (4 GiB - 1)"));
      return;
    }
    bytes += kHeaderBytes + r.size();
  }
  Status refused;
  metrics::Counter* counter = nullptr;
  {
    std::lock_guard lock(mu_);
    if (closing_) {
      refused = Status::Unavailable("buffer is closed");
      counter = &errors_closed_;
    } else if (!failed_.ok()) {
      refused = failed_;
      counter = &errors_io_;
    } else if (used_bytes_ + bytes > options_.max_bytes) {
      refused = Status::ResourceExhausted(
          "disk buffer is full: " + std::to_string(used_bytes_) + " of " +
          std::to_string(options_.max_bytes) + " bytes used, this append needs " +
          std::to_string(bytes) + "; the loader must catch up and commit");
      counter = &errors_full_;
    } else {
      used_bytes_ += bytes;
      pending_.push_back(Pending{std::move(records), std::move(done), bytes});
    }
  }
  if (counter != nullptr) {
    FailInline(done, std::move(refused), *counter);
    return;
  }
  writer_cv_.notify_one();
}

void DiskLog::WriterLoop(std::stop_token stop) {
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // Close sets closing_ before requesting stop, so once stop is requested and nothing is
      // pending, nothing more can arrive.
      writer_cv_.wait(lock, stop, [&] { return !pending_.empty(); });
      if (pending_.empty()) return;
      group.swap(pending_);
    }
    WriteGroup(group);
    group.clear();
  }
}

Status DiskLog::SyncData(const std::shared_ptr<Segment>& seg) {
  if (!options_.fsync) return Status::OK();
  auto start = std::chrono::steady_clock::now();
  Status st = seg->file->Sync();
  fsync_seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fsyncs_total_.Inc();
  fsync_count_.fetch_add(1, std::memory_order_relaxed);
  return st;
}

Status DiskLog::Roll(uint64_t base, std::vector<Touched>& touched) {
  std::string path = SegmentPath(base);
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<LogFile> file, fs_->CreateLogFile(path));
  auto seg = std::make_shared<Segment>(base, path, std::move(file));
  touched.push_back(Touched{seg, 0, true, 0, base});
  if (options_.fsync) SLUICE_RETURN_IF_ERROR(fs_->SyncDir(options_.dir));
  {
    std::lock_guard lock(mu_);
    segments_.emplace(base, seg);
  }
  active_ = std::move(seg);
  active_bytes_ = 0;
  return Status::OK();
}

void DiskLog::WriteGroup(std::vector<Pending>& group) {
  uint64_t group_bytes = 0;
  size_t group_records = 0;
  for (const Pending& p : group) {
    group_bytes += p.bytes;
    group_records += p.records.size();
  }
  Status status;
  {
    std::lock_guard lock(mu_);
    status = failed_;
  }
  std::vector<Touched> touched;
  uint64_t next = write_next_;
  if (status.ok()) {
    touched.push_back(Touched{active_, active_bytes_, false, active_bytes_, write_next_});
    std::vector<std::array<char, kHeaderBytes>> headers(group_records);
    std::vector<std::string_view> pieces;
    pieces.reserve(2 * group_records);
    size_t h = 0;
    for (const Pending& p : group) {
      for (const std::string& r : p.records) {
        const uint64_t framed = kHeaderBytes + r.size();
        if (active_bytes_ > 0 && active_bytes_ + framed > options_.segment_bytes) {
          // Make what this segment holds durable, then start the next one at this record.
          if (!pieces.empty()) {
            status = active_->file->Append(pieces);
            if (status.ok()) status = SyncData(active_);
            pieces.clear();
          }
          if (status.ok()) status = Roll(next, touched);
          if (!status.ok()) break;
        }
        char* header = headers[h++].data();
        EncodeU32(header, static_cast<uint32_t>(r.size()));
        EncodeU32(header + 4, RecordCrc(header, r.data(), r.size()));
        pieces.emplace_back(header, kHeaderBytes);
        if (!r.empty()) pieces.emplace_back(r);
        active_bytes_ += framed;
        ++next;
        touched.back().bytes_after = active_bytes_;
        touched.back().end_after = next;
      }
      if (!status.ok()) break;
    }
    if (status.ok() && !pieces.empty()) {
      status = active_->file->Append(pieces);
      if (status.ok()) status = SyncData(active_);
    }
  }

  if (status.ok()) {
    {
      std::lock_guard lock(mu_);
      for (const Touched& t : touched) {
        t.seg->durable_bytes = t.bytes_after;
        t.seg->end_offset = t.end_after;
      }
      visible_next_ = next;
    }
    write_next_ = next;
    durable_cv_.notify_all();
    appended_records_.Inc(group_records);
    for (Pending& p : group) p.done(Status::OK());
    return;
  }

  // The group failed: nothing of it is acknowledged. Undo what it wrote.
  Status undo;
  if (!touched.empty()) {
    undo = RollBack(touched);
    active_ = touched.front().seg;
    active_bytes_ = touched.front().bytes_before;
  }
  {
    std::lock_guard lock(mu_);
    if (undo.ok()) {
      used_bytes_ -= group_bytes;
    } else if (failed_.ok()) {
      failed_ =
          Status::IOError("disk buffer is in a failed state: a write or fsync failed (" +
                          status.message() + ") and undoing it failed too (" + undo.message() +
                          "); appends are refused until the server is restarted");
      spdlog::error("buffer: {}", failed_.message());
    }
  }
  if (undo.ok() && !touched.empty()) {
    spdlog::warn("buffer: a group of {} appends was not stored and was rolled back: {}",
                 group.size(), status.message());
  }
  errors_io_.Inc(group.size());
  for (Pending& p : group) p.done(status);
}

Status DiskLog::RollBack(const std::vector<Touched>& touched) {
  Status result;
  bool removed_any = false;
  for (auto it = touched.rbegin(); it != touched.rend(); ++it) {
    if (!it->created) continue;
    {
      std::lock_guard lock(mu_);
      auto found = segments_.find(it->seg->base);
      if (found != segments_.end() && found->second == it->seg) segments_.erase(found);
    }
    Status st = fs_->RemoveFile(it->seg->path);
    if (!st.ok() && result.ok()) result = st;
    removed_any = true;
  }
  if (removed_any && options_.fsync) {
    Status st = fs_->SyncDir(options_.dir);
    if (!st.ok() && result.ok()) result = st;
  }
  const Touched& first = touched.front();
  Status st = first.seg->file->Truncate(first.bytes_before);
  if (st.ok()) st = SyncData(first.seg);
  if (!st.ok() && result.ok()) result = st;
  return result;
}

Result<std::vector<Record>> DiskLog::Read(uint64_t from, size_t max_records, size_t max_bytes,
                                          std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  auto check_range = [&]() -> Status {
    if (closing_) return Status::Unavailable("buffer is closed");
    uint64_t oldest = segments_.begin()->first;
    if (from < oldest) {
      return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                     " below the oldest retained record " + std::to_string(oldest));
    }
    if (from > visible_next_) {
      return Status::InvalidArgument("read from offset " + std::to_string(from) +
                                     " beyond the next offset " + std::to_string(visible_next_));
    }
    return Status::OK();
  };
  SLUICE_RETURN_IF_ERROR(check_range());
  std::vector<Record> out;
  if (max_records == 0) return out;
  if (!durable_cv_.wait_for(lock, wait, [&] { return closing_ || visible_next_ > from; })) {
    return out;
  }
  SLUICE_RETURN_IF_ERROR(check_range());  // Close or Commit may have run while we waited

  // Start at the cursor if the last Read stopped at `from`, else scan the segment holding it.
  std::shared_ptr<Segment> seg;
  uint64_t pos = 0;
  uint64_t off = 0;
  if (auto it = segments_.find(cursor_.seg_base); cursor_.valid && cursor_.offset == from &&
                                                  it != segments_.end() &&
                                                  cursor_.pos <= it->second->durable_bytes) {
    seg = it->second;
    pos = cursor_.pos;
    off = from;
  } else {
    seg = std::prev(segments_.upper_bound(from))->second;
    off = seg->base;
  }
  cursor_.valid = false;

  size_t bytes = 0;
  bool full = false;
  while (!full) {
    if (off == seg->end_offset && off < visible_next_) {
      auto it = segments_.find(off);  // the next segment starts where this one ends
      if (it == segments_.end()) {
        return Status::Internal("no segment starts at offset " + std::to_string(off));
      }
      seg = it->second;
      pos = 0;
    }
    const uint64_t limit = seg->durable_bytes;
    const uint64_t end = seg->end_offset;
    if (off >= end) break;
    lock.unlock();
    // Outside the lock: only the durable prefix is read, which nothing changes; the Segment
    // (and its descriptor) stays alive while we hold it even if Commit deletes the file.
    Status st;
    ChunkReader reader(*seg->file, seg->path, limit);
    while (off < end) {
      if (out.size() >= max_records) {
        full = true;
        break;
      }
      if (limit - pos < kHeaderBytes) {
        st = Status::Corruption(At(seg->path, pos) + ": record header past the durable end");
        break;
      }
      Result<std::string_view> header = reader.Get(pos, kHeaderBytes);
      if (!header.ok()) {
        st = header.status();
        break;
      }
      std::array<char, kHeaderBytes> h{};
      std::copy(header->begin(), header->end(), h.begin());
      const uint32_t len = DecodeU32(h.data());
      if (len > limit - pos - kHeaderBytes) {
        st = Status::Corruption(At(seg->path, pos) + ": record length " + std::to_string(len) +
                                " runs past the durable end");
        break;
      }
      if (off >= from) {
        if (!out.empty() && bytes + len > max_bytes) {
          full = true;
          break;
        }
        Result<std::string_view> payload = reader.Get(pos + kHeaderBytes, len);
        if (!payload.ok()) {
          st = payload.status();
          break;
        }
        if (RecordCrc(h.data(), payload->data(), len) != DecodeU32(h.data() + 4)) {
          st = Status::Corruption(At(seg->path, pos) + ": CRC mismatch in the record at offset " +
                                  std::to_string(off) +
                                  " (the file was damaged after it was written)");
          break;
        }
        out.push_back(Record{off, std::string(*payload)});
        bytes += len;
      }
      pos += kHeaderBytes + len;
      ++off;
    }
    lock.lock();
    if (!st.ok()) return st;
  }
  cursor_ = Cursor{off, seg->base, pos, true};
  return out;
}

Status DiskLog::Commit(uint64_t offset) {
  std::lock_guard commit_lock(commit_mu_);
  {
    std::lock_guard lock(mu_);
    if (closing_) return Status::Unavailable("buffer is closed");
    if (offset > visible_next_) {
      return Status::InvalidArgument("commit offset " + std::to_string(offset) +
                                     " is beyond the last durable record (next offset " +
                                     std::to_string(visible_next_) + ")");
    }
    if (offset <= committed_) return Status::OK();
    committed_ = offset;
  }
  Status saved =
      fs_->ReplaceSmallFile(options_.dir + "/" + kCommittedFile, std::to_string(offset) + "\n");
  Status deleted = DeleteCommittedSegments();
  if (!saved.ok()) return saved.WithContext("saving the committed offset");
  return deleted;
}

Status DiskLog::DeleteCommittedSegments() {
  std::vector<std::pair<std::shared_ptr<Segment>, uint64_t>> doomed;
  {
    std::lock_guard lock(mu_);
    // Every record of a segment is below the next segment's base; the last (active) segment
    // has no next and is never deleted.
    while (segments_.size() > 1 && std::next(segments_.begin())->first <= committed_) {
      auto it = segments_.begin();
      doomed.emplace_back(it->second, it->second->durable_bytes);
      segments_.erase(it);
    }
  }
  if (doomed.empty()) return Status::OK();
  Status result;
  uint64_t freed = 0;
  for (const auto& [seg, bytes] : doomed) {
    Status st = fs_->RemoveFile(seg->path);
    if (st.ok()) {
      freed += bytes;
    } else if (result.ok()) {
      result = st.WithContext("deleting a committed segment");
    }
  }
  if (options_.fsync) {
    Status st = fs_->SyncDir(options_.dir);
    if (!st.ok() && result.ok()) result = st;
  }
  std::lock_guard lock(mu_);
  used_bytes_ -= freed;
  return result;
}

BufferStats DiskLog::Stats() const {
  std::lock_guard lock(mu_);
  BufferStats s;
  s.next_offset = visible_next_;
  s.committed_offset = committed_;
  s.depth_records = visible_next_ - committed_;
  for (const auto& [base, seg] : segments_) {
    if (seg->end_offset <= committed_) continue;
    if (base >= committed_) {
      s.depth_bytes += seg->durable_bytes;
    } else {
      // Assume records of even size within the segment holding the committed offset.
      const double share = static_cast<double>(seg->end_offset - committed_) /
                           static_cast<double>(seg->end_offset - base);
      s.depth_bytes += static_cast<uint64_t>(share * static_cast<double>(seg->durable_bytes));
    }
  }
  s.used_bytes = used_bytes_;
  s.capacity_bytes = options_.max_bytes;
  return s;
}

bool DiskLog::Failed() const {
  std::lock_guard lock(mu_);
  return !failed_.ok();
}

void DiskLog::Close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closing_ = true;
  }
  durable_cv_.notify_all();
  if (writer_.joinable()) {
    SLUICE_CHECK_MSG(writer_.get_id() != std::this_thread::get_id(),
                     "DiskLog::Close called from an append callback");
    writer_.request_stop();  // the writer drains pending_ first
    writer_.join();
  }
  std::map<uint64_t, std::shared_ptr<Segment>> released;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    released.swap(segments_);
    cursor_.valid = false;
  }
  active_.reset();
  released.clear();
  lock_.reset();
}

}  // namespace sluice::buffer
