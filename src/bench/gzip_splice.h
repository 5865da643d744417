// GzipSplicer: builds a gzip member (RFC 1952) out of deflate blocks compressed in advance and
// literal bytes stored uncompressed, so a load generator can send gzip bodies whose ids and
// timestamps are fresh on every request without compressing anything on the clock.
//
// How: each PrecompressedSegment is raw deflate from a fresh compressor (no back-references
// outside itself) ended with a sync flush, so it ends on a byte boundary and can be placed
// anywhere in a deflate stream. Literals go between segments as stored blocks (BTYPE 00). The
// trailer CRC-32 is combined from the segments' precomputed CRCs (crc32_combine_op) and the
// literals' own, so a body costs one memcpy per segment plus a CRC over the literal bytes.
//
// The result is one ordinary gzip member any inflater (zlib windowBits 31, gunzip) accepts.
// Compression ratio is close to whole-body gzip when segments are chained (PrecompressChain),
// a bit below it because the literals are not compressed.
//
// Concurrency: PrecompressedSegment is immutable once built and may be shared by threads; a
// GzipSplicer is used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench {

struct PrecompressedSegment {
  std::string deflate;  // raw deflate blocks, none final, ending byte-aligned
  uint32_t crc = 0;     // CRC-32 of the uncompressed bytes
  uint64_t crc_op = 0;  // crc32_combine_gen(raw_size)
  size_t raw_size = 0;
};

// Compresses `raw` at zlib `level` (1..9) into a segment that refers to nothing before it.
// Aborts on a zlib failure (only an out-of-memory or a bad level, both programmer errors here).
PrecompressedSegment Precompress(std::string_view raw, int level);

// Compresses pieces[0..n) as a chain: segment i may refer back to pieces 0..i-1 and to the
// `gap` that follows each of them, which is how whole-body gzip gets its ratio from repeated
// keys and values. The splicer must then emit the segments in order, each followed by exactly
// gap.size() literal bytes that equal `gap` except where gap holds kGapWildcard. Wildcard bytes
// (the ids and timestamps only known at send time) must not occur in any piece: deflate only
// copies bytes equal to its input, so no back-reference can then read them.
inline constexpr char kGapWildcard = '\x01';
std::vector<PrecompressedSegment> PrecompressChain(const std::vector<std::string_view>& pieces,
                                                   std::string_view gap, int level);

class GzipSplicer {
 public:
  // Starts a gzip member in *out (cleared first). *out must outlive Finish().
  void Begin(std::string* out);
  // Appends bytes that go into the stream uncompressed (stored blocks).
  void Literal(std::string_view bytes);
  void Segment(const PrecompressedSegment& segment);
  // Writes the final block and the trailer. The member is complete after this.
  void Finish();

  // Uncompressed bytes so far.
  uint64_t RawSize() const { return raw_size_; }

 private:
  void FlushLiterals();

  std::string* out_ = nullptr;
  std::string pending_;  // literals not yet written as a stored block
  uint32_t crc_ = 0;
  uint64_t raw_size_ = 0;
};

}  // namespace sluice::bench
