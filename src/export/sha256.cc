#include "export/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <vector>

namespace sluice::exporter {
namespace {

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string Hex(const unsigned char* digest, unsigned int len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kDigits[digest[i] >> 4];
    out += kDigits[digest[i] & 0xf];
  }
  return out;
}

// Hashes what `feed` passes to its update callback. Internal error if libcrypto fails (it
// does not for SHA-256 short of running out of memory).
template <typename Feed>
Result<std::string> Digest(Feed&& feed) {
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Status::Internal("SHA-256: cannot initialise libcrypto's digest");
  }
  bool update_ok = true;
  Status fed = feed([&](const void* data, size_t n) {
    if (update_ok && EVP_DigestUpdate(ctx.get(), data, n) != 1) update_ok = false;
  });
  SLUICE_RETURN_IF_ERROR(fed);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (!update_ok || EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1) {
    return Status::Internal("SHA-256: libcrypto's digest failed");
  }
  return Hex(md.data(), len);
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  Result<std::string> r = Digest([&](auto&& update) {
    update(data.data(), data.size());
    return Status::OK();
  });
  SLUICE_CHECK_MSG(r.ok(), r.status().ToString());
  return std::move(r).value();
}

Result<FileDigest> DigestFile(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    Status s = Status::FromErrno("open " + path, err);
    return err == ENOENT ? Status::NotFound(s.message()) : s;
  }
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  FileDigest out;
  std::vector<char> buf(1 << 20);
  SLUICE_ASSIGN_OR_RETURN(out.sha256, Digest([&](auto&& update) -> Status {
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("read " + path, errno);
      }
      if (n == 0) return Status::OK();
      update(buf.data(), static_cast<size_t>(n));
      out.bytes += static_cast<uint64_t>(n);
    }
  }));
  return out;
}

}  // namespace sluice::exporter
