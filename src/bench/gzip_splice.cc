#include "bench/gzip_splice.h"

#include <zlib.h>

#include <algorithm>

#include "common/status.h"

namespace sluice::bench {
namespace {

constexpr size_t kMaxStoredBlock = 65535;

void PutLe16(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}

void PutLe32(std::string* out, uint32_t v) {
  PutLe16(out, v & 0xffff);
  PutLe16(out, v >> 16);
}

// A stored block header at a byte boundary: BFINAL, BTYPE=00, padding, LEN, NLEN.
void PutStoredHeader(std::string* out, size_t len, bool final_block) {
  out->push_back(final_block ? '\x01' : '\x00');
  PutLe16(out, static_cast<uint32_t>(len));
  PutLe16(out, static_cast<uint32_t>(~len & 0xffff));
}

// Deflates `raw` in `zs` up to a sync flush: the output ends on a byte boundary, no block is
// marked final, and the compressor's window keeps `raw` for what comes next.
PrecompressedSegment DeflateSegment(z_stream* zs, std::string_view raw) {
  PrecompressedSegment seg;
  seg.deflate.resize(deflateBound(zs, static_cast<uLong>(raw.size())) + 64);
  zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs->avail_in = static_cast<uInt>(raw.size());
  zs->next_out = reinterpret_cast<Bytef*>(seg.deflate.data());
  zs->avail_out = static_cast<uInt>(seg.deflate.size());
  const int rc = deflate(zs, Z_SYNC_FLUSH);
  SLUICE_CHECK(rc == Z_OK && zs->avail_in == 0 && zs->avail_out > 0);
  seg.deflate.resize(seg.deflate.size() - zs->avail_out);
  seg.crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uInt>(raw.size())));
  seg.crc_op = crc32_combine_gen(static_cast<z_off_t>(raw.size()));
  seg.raw_size = raw.size();
  return seg;
}

// Raw deflate (negative window bits): the gzip framing is the splicer's.
void InitRawDeflate(z_stream* zs, int level) {
  SLUICE_CHECK(deflateInit2(zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
}

}  // namespace

PrecompressedSegment Precompress(std::string_view raw, int level) {
  z_stream zs{};
  InitRawDeflate(&zs, level);
  PrecompressedSegment seg = DeflateSegment(&zs, raw);
  deflateEnd(&zs);
  return seg;
}

std::vector<PrecompressedSegment> PrecompressChain(const std::vector<std::string_view>& pieces,
                                                   std::string_view gap, int level) {
  z_stream zs{};
  InitRawDeflate(&zs, level);
  std::vector<PrecompressedSegment> out;
  out.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    SLUICE_DCHECK(pieces[i].find(kGapWildcard) == std::string_view::npos);
    if (i > 0) {
      // zlib allows this for raw deflate right after a flush: it appends `gap` to the window
      // as history without emitting it, exactly as the splicer's literal will appear.
      SLUICE_CHECK(deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(gap.data()),
                                        static_cast<uInt>(gap.size())) == Z_OK);
    }
    out.push_back(DeflateSegment(&zs, pieces[i]));
  }
  deflateEnd(&zs);
  return out;
}

void GzipSplicer::Begin(std::string* out) {
  out_ = out;
  out_->clear();
  pending_.clear();
  crc_ = 0;
  raw_size_ = 0;
  // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown).
  static constexpr char kHeader[] = {'\x1f', '\x8b', '\x08', 0, 0, 0, 0, 0, 0, '\xff'};
  out_->append(kHeader, sizeof(kHeader));
}

void GzipSplicer::Literal(std::string_view bytes) {
  pending_.append(bytes);
  crc_ = static_cast<uint32_t>(
      crc32(crc_, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  raw_size_ += bytes.size();
}

void GzipSplicer::Segment(const PrecompressedSegment& segment) {
  FlushLiterals();
  out_->append(segment.deflate);
  crc_ = static_cast<uint32_t>(crc32_combine_op(crc_, segment.crc, segment.crc_op));
  raw_size_ += segment.raw_size;
}

void GzipSplicer::FlushLiterals() {
  std::string_view rest = pending_;
  while (!rest.empty()) {
    const size_t n = std::min(rest.size(), kMaxStoredBlock);
    PutStoredHeader(out_, n, /*final_block=*/false);
    out_->append(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  pending_.clear();
}

void GzipSplicer::Finish() {
  FlushLiterals();
  PutStoredHeader(out_, 0, /*final_block=*/true);
  PutLe32(out_, crc_);
  PutLe32(out_, static_cast<uint32_t>(raw_size_ & 0xffffffffu));
  out_ = nullptr;
}

}  // namespace sluice::bench
