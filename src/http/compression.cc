#include "http/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <memory>

namespace sluice::http {
namespace {

Status Inflate(std::string_view in, size_t max_out, int window_bits, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return Status::Internal("inflateInit2 failed");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  out->clear();
  size_t chunk = std::min<size_t>(std::max<size_t>(in.size() * 4, 16 * 1024), max_out + 1);
  for (;;) {
    size_t old = out->size();
    size_t grow = std::min(chunk, max_out + 1 - old);
    if (grow == 0) {
      return Status::ResourceExhausted("decompressed body is over max_body_bytes (" +
                                       std::to_string(max_out) + ")");
    }
    out->resize(old + grow);
    zs.next_out = reinterpret_cast<Bytef*>(out->data() + old);
    zs.avail_out = static_cast<uInt>(grow);
    int rc = inflate(&zs, Z_NO_FLUSH);
    out->resize(old + grow - zs.avail_out);
    if (out->size() > max_out) {
      return Status::ResourceExhausted("decompressed body is over max_body_bytes (" +
                                       std::to_string(max_out) + ")");
    }
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal; handle them by resetting.
      if (zs.avail_in > 0 && window_bits > 15) {
        if (inflateReset(&zs) != Z_OK) return Status::Internal("inflateReset failed");
        continue;
      }
      return Status::OK();
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      return Status::InvalidArgument("compressed body is truncated");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Status::InvalidArgument(std::string("compressed body is corrupt: ") +
                                     (zs.msg ? zs.msg : "inflate error"));
    }
    chunk *= 2;
  }
}

Status Unzstd(std::string_view in, size_t max_out, std::string* out) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!dctx) return Status::Internal("ZSTD_createDCtx failed");
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  out->clear();
  size_t chunk = std::min<size_t>(std::max<size_t>(in.size() * 4, 16 * 1024), max_out + 1);
  size_t last = 1;
  while (input.pos < input.size || last != 0) {
    size_t old = out->size();
    size_t grow = std::min(chunk, max_out + 1 - old);
    if (grow == 0) break;
    out->resize(old + grow);
    ZSTD_outBuffer output{out->data() + old, grow, 0};
    last = ZSTD_decompressStream(dctx.get(), &output, &input);
    out->resize(old + output.pos);
    if (ZSTD_isError(last)) {
      return Status::InvalidArgument(std::string("compressed body is corrupt: ") +
                                     ZSTD_getErrorName(last));
    }
    if (out->size() > max_out) break;
    if (input.pos == input.size && last != 0 && output.pos < grow) {
      return Status::InvalidArgument("compressed body is truncated");
    }
    chunk *= 2;
  }
  if (out->size() > max_out) {
    return Status::ResourceExhausted("decompressed body is over max_body_bytes (" +
                                     std::to_string(max_out) + ")");
  }
  return Status::OK();
}

}  // namespace

Status DecodeBody(std::string_view encoding, std::string_view in, size_t max_out,
                  std::string* out) {
  if (encoding.empty() || encoding == "identity") {
    out->assign(in);
    return Status::OK();
  }
  if (encoding == "gzip" || encoding == "x-gzip") return Inflate(in, max_out, 15 + 16, out);
  if (encoding == "deflate") return Inflate(in, max_out, 15, out);
  if (encoding == "zstd") return Unzstd(in, max_out, out);
  return Status::FailedPrecondition("unsupported Content-Encoding \"" + std::string(encoding) +
                                    "\": send gzip, deflate, zstd or none");
}

std::string GzipCompress(std::string_view in, int level) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace sluice::http
