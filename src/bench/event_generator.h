// EventGenerator: realistic web-shop events in the Segment shape (page views, "Product
// Viewed"/"Product Clicked"/"Product Added"/"Products Searched"/"Order Completed" tracks,
// identify calls) with a full `context`, for load testing the ingest endpoints.
//
// Speed: at construction it renders a pool of event templates; an event at run time is a
// template copied verbatim plus a fresh messageId and timestamp, so a 2 KB event costs a
// memcpy and ~80 bytes of formatting. With gzip the templates are also precompressed and
// bodies are spliced from them (see gzip_splice.h): no compression happens on the clock.
// Templates form chains of kChainLength; a multi-event body walks whole chains in order, and
// each chain is compressed as one stream, so gzip bodies get the ratio of real batch gzip.
//
// Shape of every event: {...,"messageId":"<prefix>-<seq>","userId":"usr_<12 hex>","timestamp":
// "<ISO-8601 ms>"} — the fields that change are last, so a template is a fixed prefix (up to and
// including "<prefix>-") plus a tail (the seq in decimal, user, timestamp).
//
// Users: every event has a userId, drawn from a population of options.users; events come in
// sessions of kSessionEvents consecutive seqs by one user (UserFor), so a user does several
// things (a product view, an add to cart, an order…) and returns in later sessions, which is
// what distinct-user counts and funnels over the generated events need. Templates (and so
// anonymousId and context) do not follow the user: only the userId does.
//
// Guarantees:
//  - Deterministic: the same options give the same templates and the same bodies for the same
//    (first_seq, count, time).
//  - messageId is "<id_prefix>-<seq>", seq in decimal without leading zeros (MessageId()), so a
//    checker can rebuild the ids of a run from its prefix and seq ranges; unique for every
//    seq < kMaxSeq of one id_prefix (give each run a fresh prefix so a server's dedup window
//    never sees repeats).
//  - gzip bodies: the spliced stream needs a fixed-length tail, so there the closing quote of
//    the messageId is followed by JSON whitespace up to kMaxSeqDigits (insignificant to any
//    parser; the messageId itself is the same). Plain bodies have no padding.
//  - Sizes: each template is padded (a `description` / `bio` text field) towards
//    event_bytes with ±15% spread, balanced so the pool's mean is event_bytes. Targets below the
//    natural size of an event (~1.1–1.6 KB) give the natural size; MeanEventBytes() says what
//    the pool really averages.
//
// Concurrency: an EventGenerator is immutable after construction and may be shared by threads.
// A BodyBuilder belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/gzip_splice.h"

namespace sluice::bench {

enum class EventMix {
  kWebShop,    // pages, tracks and identifies, as a shop's site sends them
  kTrackOnly,  // only track events (for POST /v1/track)
};

struct EventGeneratorOptions {
  size_t event_bytes = 2048;  // target mean size of one event's JSON
  uint64_t seed = 1;
  // Every messageId is id_prefix + "-" + seq; [A-Za-z0-9_.:-], 1 to kMaxIdPrefixLength chars.
  std::string id_prefix = "bench";
  EventMix mix = EventMix::kWebShop;
  size_t template_count = 1024;  // rounded up to a multiple of kChainLength
  bool precompress = false;      // also build the gzip segments BodyBuilder needs for gzip bodies
  int gzip_level = 6;
  uint64_t users = 1'000'000;  // size of the user population (at most 16^12)
};

// Length of an ISO-8601 UTC timestamp with milliseconds: 2024-05-01T12:34:56.789Z.
inline constexpr size_t kTimestampLength = 24;
// Limits of messageIds: seq < kMaxSeq, so it has at most kMaxSeqDigits decimal digits.
inline constexpr uint64_t kMaxSeq = uint64_t{1} << 48;
inline constexpr size_t kMaxSeqDigits = 15;
inline constexpr size_t kMaxIdPrefixLength = 64;

// Writes `wall_micros` (since the Unix epoch) as ISO-8601 UTC with milliseconds.
void FormatTimestamp(int64_t wall_micros, char (&out)[kTimestampLength]);
std::string FormatTimestamp(int64_t wall_micros);

// The messageId of event `seq` in the run with this prefix: "<id_prefix>-<seq>", e.g.
// "a1b2c3d4-42".
std::string MessageId(std::string_view id_prefix, uint64_t seq);

// True when `prefix` may be an id_prefix: 1 to kMaxIdPrefixLength of [A-Za-z0-9_.:-].
bool ValidIdPrefix(std::string_view prefix);

// How events are framed in one request body.
enum class BodyFormat {
  kBatch,   // {"batch":[e1,e2,…],"sentAt":"…"}   (POST /v1/batch, /v1/noop)
  kSingle,  // one event with "sentAt" added     (POST /v1/track)
  kNdjson,  // e1\ne2\n…                           (POST /v1/events)
};

class EventGenerator {
 public:
  static constexpr size_t kChainLength = 64;
  // Consecutive seqs that form one user's session.
  static constexpr uint64_t kSessionEvents = 8;

  explicit EventGenerator(const EventGeneratorOptions& options);

  // Appends event `seq` stamped with `timestamp` (kTimestampLength chars) to *out, as a
  // kSingle body would carry it without its sentAt; returns the number of bytes appended.
  size_t AppendEvent(uint64_t seq, std::string_view timestamp, std::string* out) const;

  // The user number (in [0, options.users)) of event `seq`: the same for every seq of a session
  // (seq / kSessionEvents), a pseudo-random user per session, the same for the same seed. The
  // event's userId is "usr_" and this number in 12 hex digits.
  uint64_t UserFor(uint64_t seq) const;

  const EventGeneratorOptions& Options() const { return options_; }
  size_t TemplateCount() const { return templates_.size(); }
  // Mean size of one event over the template pool, in bytes.
  double MeanEventBytes() const { return mean_event_bytes_; }

 private:
  friend class BodyBuilder;

  struct Template {
    std::string prefix;  // the event up to `"messageId":"` and "<id_prefix>-"
    // Filled when options.precompress: the prefix compressed alone (kSingle), and within its
    // chain for batch and NDJSON framing.
    PrecompressedSegment gzip_alone, gzip_batch, gzip_ndjson;
  };
  // The template of event i of a body whose first event is first_seq.
  const Template& TemplateFor(BodyFormat format, uint64_t first_seq, size_t i) const;
  void Precompress();

  EventGeneratorOptions options_;
  std::vector<Template> templates_;
  double mean_event_bytes_ = 0;
};

// Builds request bodies from a generator. Reuse one per connection: it keeps its buffers.
class BodyBuilder {
 public:
  // `gzip` needs a generator built with options.precompress.
  BodyBuilder(const EventGenerator& generator, BodyFormat format, bool gzip);

  struct Built {
    size_t events = 0;
    size_t event_bytes = 0;  // uncompressed JSON bytes of the events, without framing
  };
  // Replaces *out with a body holding events first_seq .. first_seq+count-1 (count is forced to
  // 1 for kSingle), all stamped `wall_micros`; gzip-compressed if the builder is.
  Built Build(uint64_t first_seq, int count, int64_t wall_micros, std::string* out);

 private:
  // The per-event tail: the messageId's seq, userId, timestamp, optional sentAt, closing brace.
  void Tail(uint64_t seq, std::string_view ts, bool with_sent_at);

  const EventGenerator& generator_;
  BodyFormat format_;
  bool gzip_;
  GzipSplicer splicer_;
  std::string tail_;
  size_t tail_padding_ = 0;  // spaces in tail_ (gzip bodies), not part of the event
};

}  // namespace sluice::bench
