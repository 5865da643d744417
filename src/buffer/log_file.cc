#include "buffer/log_file.h"
#include "common/unique_fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace sluice::buffer {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  std::string what(op);
  what += ' ';
  what += path;
  if (err == ENOENT) return Status::NotFound(Status::FromErrno(what, err).message());
  if (err == EEXIST) return Status::AlreadyExists(Status::FromErrno(what, err).message());
  return Status::FromErrno(what, err);
}

class PosixLogFile final : public LogFile {
 public:
  PosixLogFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  Status Append(std::span<const std::string_view> pieces) override {
    // writev at most IOV_MAX pieces per call; resume after a partial write.
    std::vector<iovec> iov;
    iov.reserve(std::min<size_t>(pieces.size(), IOV_MAX));
    size_t next = 0;  // first piece not yet queued in iov
    while (next < pieces.size() || !iov.empty()) {
      while (iov.size() < IOV_MAX && next < pieces.size()) {
        std::string_view p = pieces[next++];
        if (p.empty()) continue;
        iov.push_back({const_cast<char*>(p.data()), p.size()});
      }
      if (iov.empty()) break;
      ssize_t n = ::writev(fd_.get(), iov.data(), static_cast<int>(iov.size()));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno);
      }
      // Drop fully written iovecs, advance into a partially written one.
      auto left = static_cast<size_t>(n);
      size_t done = 0;
      while (done < iov.size() && left >= iov[done].iov_len) {
        left -= iov[done].iov_len;
        ++done;
      }
      iov.erase(iov.begin(), iov.begin() + static_cast<std::ptrdiff_t>(done));
      if (left > 0) {
        iov.front().iov_base = static_cast<char*>(iov.front().iov_base) + left;
        iov.front().iov_len -= left;
      }
    }
    return Status::OK();
  }

  Status Sync() override {
    while (::fdatasync(fd_.get()) != 0) {
      if (errno != EINTR) return ErrnoStatus("fdatasync", path_, errno);
    }
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    while (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return ErrnoStatus("ftruncate", path_, errno);
    }
    return Status::OK();
  }

  Status ReadAt(uint64_t pos, size_t n, char* dst, size_t* read) const override {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_.get(), dst + got, n - got, static_cast<off_t>(pos + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read", path_, errno);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    *read = got;
    return Status::OK();
  }

  Result<uint64_t> Size() const override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return ErrnoStatus("stat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  UniqueFd fd_;
  const std::string path_;
};

class PosixDirLock final : public DirLock {
 public:
  explicit PosixDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  ~PosixDirLock() override { ::flock(fd_.get(), LOCK_UN); }

 private:
  UniqueFd fd_;
};

Result<UniqueFd> OpenFd(const std::string& path, int flags, mode_t mode = 0644) {
  for (;;) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != EINTR) return ErrnoStatus("open", path, errno);
  }
}

class PosixLogFileSystem final : public LogFileSystem {
 public:
  Status CreateDir(const std::string& dir) override {
    // mkdir -p: create each prefix in turn; EEXIST is fine.
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i != dir.size() && dir[i] != '/') continue;
      std::string prefix = dir.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir", prefix, errno);
      }
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus("stat", dir, errno);
    if (!S_ISDIR(st.st_mode)) return Status::IOError(dir + " exists and is not a directory");
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
    if (!d) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d.get())) {
      std::string_view name(e->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) return ErrnoStatus("readdir", dir, errno);
    return names;
  }

  Result<std::unique_ptr<LogFile>> OpenLogFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDWR | O_APPEND));
    return std::unique_ptr<LogFile>(std::make_unique<PosixLogFile>(std::move(fd), path));
  }

  Result<std::unique_ptr<LogFile>> CreateLogFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL));
    return std::unique_ptr<LogFile>(std::make_unique<PosixLogFile>(std::move(fd), path));
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(dir, O_RDONLY | O_DIRECTORY));
    while (::fsync(fd.get()) != 0) {
      if (errno != EINTR) return ErrnoStatus("fsync", dir, errno);
    }
    return Status::OK();
  }

  Result<std::string> ReadSmallFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t r = ::read(fd.get(), buf, sizeof(buf));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read", path, errno);
      }
      if (r == 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }

  Status ReplaceSmallFile(const std::string& path, std::string_view contents) override {
    std::string tmp = path + ".tmp";
    {
      SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(tmp, O_WRONLY | O_CREAT | O_TRUNC));
      PosixLogFile file(std::move(fd), tmp);
      std::string_view piece = contents;
      SLUICE_RETURN_IF_ERROR(file.Append(std::span<const std::string_view>(&piece, 1)));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename", tmp, errno);
    return Status::OK();
  }

  Result<std::unique_ptr<DirLock>> LockFile(const std::string& path) override {
    SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDWR | O_CREAT));
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return Status::Unavailable(path +
                                   " is locked: another process (or another open buffer "
                                   "in this one) is using this directory");
      }
      return ErrnoStatus("flock", path, errno);
    }
    return std::unique_ptr<DirLock>(std::make_unique<PosixDirLock>(std::move(fd)));
  }
};

}  // namespace

std::shared_ptr<LogFileSystem> NewPosixLogFileSystem() {
  return std::make_shared<PosixLogFileSystem>();
}

}  // namespace sluice::buffer
