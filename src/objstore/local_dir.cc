#include "objstore/local_dir.h"
#include "common/unique_fd.h"
#include "common/writeback_pacer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <utility>

namespace sluice::objstore {
namespace {

constexpr size_t kMaxKeyBytes = 1024;
constexpr std::string_view kTempPrefix = ".sluice-tmp";
constexpr size_t kCopyChunk = 1 << 20;

// "open /root/key: No such file or directory", as NotFound for ENOENT/ENOTDIR.
Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  std::string what(op);
  what += ' ';
  what += path;
  Status s = Status::FromErrno(what, err);
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(s.message());
  return s;
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<UniqueFd> OpenFd(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  return UniqueFd(fd);
}

Status FsyncFd(int fd, const std::string& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoStatus("fsync", path, errno);
  }
  return Status::OK();
}

Status FsyncDir(const std::string& dir) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(dir, O_RDONLY | O_DIRECTORY));
  return FsyncFd(fd.get(), dir);
}

// mkdir -p that makes each new directory durable: after creating a directory it fsyncs the
// parent, so the new entry survives a crash.
Status MakeDirs(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::OK();
    return ErrnoStatus("mkdir", dir, ENOTDIR);
  }
  if (errno != ENOENT) return ErrnoStatus("stat", dir, errno);
  std::string parent = ParentDir(dir);
  if (parent != dir) SLUICE_RETURN_IF_ERROR(MakeDirs(parent));
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return MakeDirs(dir);  // raced with another creator: check it
    return ErrnoStatus("mkdir", dir, errno);
  }
  return FsyncDir(parent);
}

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

// Copies all of `from` (an open descriptor of `from_path`) to `to`: copy_file_range where the
// kernel and file systems allow it (in-kernel, reflinks where supported), read/write otherwise.
Status CopyFd(int from, const std::string& from_path, int to, const std::string& to_path) {
  bool kernel_copy = true;
  std::string buf;
  int chunks_since_writeback = 0;
  for (;;) {
    if (kernel_copy) {
      // 8 MiB at a time, each followed by a writeback start: a 1 GB window file would
      // otherwise sit dirty in the page cache until the fsync, and flushing it all at once
      // stalls the buffer's fdatasync (writeback_pacer.h).
      ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, kCopyChunk * 8, 0);
      if (n > 0) {
        StartWriteback(to);
        continue;
      }
      if (n == 0) return Status::OK();
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
          errno == EPERM) {
        // Unsupported here. copy_file_range moved the file offsets of both descriptors by
        // whatever it copied, so the read/write loop resumes where it stopped.
        kernel_copy = false;
        buf.resize(kCopyChunk);
        continue;
      }
      return ErrnoStatus("copy " + from_path + " to", to_path, errno);
    }
    ssize_t n = ::read(from, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", from_path, errno);
    }
    if (n == 0) return Status::OK();
    SLUICE_RETURN_IF_ERROR(WriteAll(to, buf.data(), static_cast<size_t>(n), to_path));
    if (++chunks_since_writeback == 8) {
      StartWriteback(to);
      chunks_since_writeback = 0;
    }
  }
}

// The last steps of an atomic, durable write: when `s` (the writing and fsync of `temp_path`)
// is OK, renames `temp_path` over `final_path` and fsyncs the directory. On any failure the
// temporary file is removed.
Status RenameIntoPlace(Status s, const std::string& temp_path, const std::string& final_path) {
  if (s.ok() && ::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    s = ErrnoStatus("rename " + temp_path + " to", final_path, errno);
  }
  if (!s.ok()) {
    ::unlink(temp_path.c_str());
    return s;
  }
  // The rename is done: the new content is visible. Making the directory entry durable can
  // still fail; the caller is told, and a retry rewrites the same content.
  return FsyncDir(ParentDir(final_path));
}

// Writes `final_path` atomically and durably: `fill` writes the content into a new temporary
// file `temp_path` in the same directory, which is fsynced, renamed over `final_path`, and the
// directory fsynced. On any failure the temporary file is removed.
Status WriteAtomically(const std::string& final_path, const std::string& temp_path,
                       const std::function<Status(int fd)>& fill) {
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd,
                          OpenFd(temp_path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644));
  Status s = fill(fd.get());
  if (s.ok()) s = FsyncFd(fd.get(), temp_path);
  if (s.ok() && fd.Close() != 0) s = ErrnoStatus("close", temp_path, errno);
  return RenameIntoPlace(std::move(s), temp_path, final_path);
}

ObjectInfo InfoOf(std::string key, const struct stat& st) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = static_cast<uint64_t>(st.st_size);
  info.etag = std::to_string(info.size) + "-" +
              std::to_string(static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                             st.st_mtim.tv_nsec);
  return info;
}

bool HasDotSegment(std::string_view path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    if (seg == "." || seg == "..") return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

Status ValidateKey(std::string_view key) {
  auto bad = [key](std::string_view why) {
    std::string m = "invalid object key \"";
    m += key.substr(0, 200);
    m += "\": ";
    m += why;
    return Status::InvalidArgument(std::move(m));
  };
  if (key.empty()) return Status::InvalidArgument("invalid object key: the key is empty");
  if (key.size() > kMaxKeyBytes) return bad("longer than 1024 bytes");
  if (key.find('\0') != std::string_view::npos) return bad("it contains a NUL byte");
  if (key.front() == '/') return bad("keys are relative to the store, not absolute paths");
  size_t pos = 0;
  while (pos <= key.size()) {
    size_t end = key.find('/', pos);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(pos, end - pos);
    if (seg.empty()) return bad("it has an empty path segment");
    if (seg == "." || seg == "..") return bad("\".\" and \"..\" segments are not allowed");
    if (seg.starts_with(kTempPrefix)) return bad("names starting with .sluice-tmp are reserved");
    pos = end + 1;
  }
  return Status::OK();
}

Result<std::unique_ptr<LocalDir>> LocalDir::Open(const std::string& root) {
  if (root.empty()) return Status::InvalidArgument("object store directory is empty");
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(root, ec);
  if (ec) return Status::IOError("object store directory " + root + ": " + ec.message());
  std::string dir = abs.lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SLUICE_RETURN_IF_ERROR(MakeDirs(dir).WithContext("object store directory"));
  return std::unique_ptr<LocalDir>(new LocalDir(std::move(dir)));
}

std::string LocalDir::Url() const { return "file://" + root_; }

std::string LocalDir::PathOf(std::string_view key) const {
  std::string p = root_;
  if (p != "/") p += '/';
  p += key;
  return p;
}

std::string LocalDir::TempPathIn(const std::string& dir) {
  std::string p = dir;
  if (p != "/") p += '/';
  p += kTempPrefix;
  p += '-';
  p += std::to_string(::getpid());
  p += '-';
  p += std::to_string(next_temp_.fetch_add(1));
  return p;
}

Status LocalDir::PutFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(UniqueFd src, OpenFd(local_path, O_RDONLY));
  const std::string path = PathOf(key);
  const std::string dir = ParentDir(path);
  SLUICE_RETURN_IF_ERROR(MakeDirs(dir));
  // On the same file system the file is linked, not copied: a window's export (~1 GB at the
  // seed's rate) written a second time made a burst of writeback that stalled the buffer's
  // writes for up to 0.6 s (BENCHMARKS.md, seed workload). The link gets the same fsync,
  // rename and directory fsync as a copy.
  const std::string temp = TempPathIn(dir);
  if (::link(local_path.c_str(), temp.c_str()) == 0) {
    return RenameIntoPlace(FsyncFd(src.get(), local_path), temp, path);
  }
  // EXDEV (another file system), EPERM (one without hard links), EMLINK, ...: copy.
  return WriteAtomically(path, temp, [&](int fd) {
    return CopyFd(src.get(), local_path, fd, path);
  });
}

Status LocalDir::PutBytes(const std::string& key, const std::string& data) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = PathOf(key);
  const std::string dir = ParentDir(path);
  SLUICE_RETURN_IF_ERROR(MakeDirs(dir));
  return WriteAtomically(path, TempPathIn(dir),
                         [&](int fd) { return WriteAll(fd, data.data(), data.size(), path); });
}

Status LocalDir::GetFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = PathOf(key);
  SLUICE_ASSIGN_OR_RETURN(UniqueFd src, OpenFd(path, O_RDONLY));
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return ErrnoStatus("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return Status::NotFound("no object at " + path + " (not a file)");
  return WriteAtomically(local_path, TempPathIn(ParentDir(local_path)), [&](int fd) {
    return CopyFd(src.get(), path, fd, local_path);
  });
}

Result<std::string> LocalDir::GetBytes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = PathOf(key);
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return Status::NotFound("no object at " + path + " (not a file)");
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  std::array<char, 64 * 1024> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path, errno);
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  return out;
}

Result<ObjectInfo> LocalDir::Head(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = PathOf(key);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return Status::NotFound("no object at " + path + " (not a file)");
  return InfoOf(key, st);
}

Result<std::vector<ObjectInfo>> LocalDir::List(const std::string& prefix) {
  if (!prefix.empty() && prefix.front() == '/') {
    return Status::InvalidArgument("invalid list prefix \"" + prefix +
                                   "\": prefixes are relative to the store");
  }
  if (prefix.find('\0') != std::string::npos || HasDotSegment(prefix)) {
    return Status::InvalidArgument("invalid list prefix \"" + prefix +
                                   "\": \".\" and \"..\" segments are not allowed");
  }
  // Walk from the deepest directory the prefix names completely; the rest of the prefix
  // filters (and prunes) below it.
  const size_t slash = prefix.rfind('/');
  const std::string base_key = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const std::string base = base_key.empty() ? root_ : PathOf(base_key);

  std::vector<ObjectInfo> out;
  // Depth-first over directories; `rel` is the key of `dir` ("" for the root).
  std::function<Status(const std::string&, const std::string&)> walk =
      [&](const std::string& dir, const std::string& rel) -> Status {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
    if (d == nullptr) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::OK();  // nothing under it
      return ErrnoStatus("opendir", dir, errno);
    }
    for (;;) {
      errno = 0;
      dirent* e = ::readdir(d.get());
      if (e == nullptr) {
        if (errno != 0) return ErrnoStatus("readdir", dir, errno);
        break;
      }
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name.starts_with(kTempPrefix)) continue;
      std::string key = rel.empty() ? std::string(name) : rel + "/" + std::string(name);
      std::string child = dir + "/" + std::string(name);
      struct stat st {};
      if (::stat(child.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // deleted while we listed
        return ErrnoStatus("stat", child, errno);
      }
      if (S_ISDIR(st.st_mode)) {
        // Prune what cannot match: every key below this directory starts with "key/".
        std::string as_dir = key + "/";
        bool may_match = as_dir.starts_with(prefix) || prefix.starts_with(as_dir);
        if (may_match) SLUICE_RETURN_IF_ERROR(walk(child, key));
      } else if (S_ISREG(st.st_mode) && key.starts_with(prefix)) {
        out.push_back(InfoOf(std::move(key), st));
      }
    }
    return Status::OK();
  };
  SLUICE_RETURN_IF_ERROR(walk(base, base_key));
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status LocalDir::Delete(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = PathOf(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::OK();
    return ErrnoStatus("unlink", path, errno);
  }
  return FsyncDir(ParentDir(path));
}

std::optional<std::string> LocalDir::LocalPath(const std::string& key) const {
  if (!ValidateKey(key).ok()) return std::nullopt;
  return PathOf(key);
}

}  // namespace sluice::objstore
