#include "bench/event_generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <zlib.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::bench {
namespace {

constexpr int64_t kNow = 1'714'566'896'789'123;  // 2024-05-01T12:34:56.789123Z

std::string Gunzip(const std::string& in) {
  std::string out;
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::vector<char> buf(1 << 16);
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END) << zs.msg;
  EXPECT_EQ(zs.avail_in, 0u) << "bytes after the gzip member";
  inflateEnd(&zs);
  return out;
}

std::string Str(simdjson::dom::element e, const char* pointer) {
  std::string_view v;
  auto err = e.at_pointer(pointer).get(v);
  EXPECT_EQ(err, simdjson::SUCCESS) << pointer;
  return std::string(v);
}

bool Has(simdjson::dom::element e, const char* pointer) {
  return e.at_pointer(pointer).error() == simdjson::SUCCESS;
}

TEST(EventGeneratorTest, TimestampAndMessageIdFormats) {
  EXPECT_EQ(FormatTimestamp(kNow), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(MessageId("a1b2c3d4", 42), "a1b2c3d4-42");
  EXPECT_EQ(MessageId("seed.run:1", 0), "seed.run:1-0");
  EXPECT_EQ(MessageId("p", kMaxSeq - 1), "p-281474976710655");
  EXPECT_EQ(std::to_string(kMaxSeq - 1).size(), kMaxSeqDigits);
  EXPECT_TRUE(ValidIdPrefix("a1b2c3d4"));
  EXPECT_TRUE(ValidIdPrefix("Seed_run.7:x-y"));
  EXPECT_FALSE(ValidIdPrefix(""));
  EXPECT_FALSE(ValidIdPrefix("has space"));
  EXPECT_FALSE(ValidIdPrefix("quote'"));
  EXPECT_FALSE(ValidIdPrefix("x\x01"));
  EXPECT_FALSE(ValidIdPrefix(std::string(kMaxIdPrefixLength + 1, 'a')));
  EXPECT_TRUE(ValidIdPrefix(std::string(kMaxIdPrefixLength, 'a')));
}

TEST(EventGeneratorTest, EventsAreValidSegmentJson) {
  EventGenerator gen({});
  simdjson::dom::parser parser;
  std::set<std::string> types, names;
  const std::string ts = FormatTimestamp(kNow);
  for (uint64_t seq = 0; seq < 3000; ++seq) {
    std::string json;
    gen.AppendEvent(seq, ts, &json);
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(json).get(e), simdjson::SUCCESS) << json;
    const std::string type = Str(e, "/type");
    types.insert(type);
    EXPECT_EQ(Str(e, "/timestamp"), ts);
    EXPECT_EQ(Str(e, "/messageId"), MessageId("bench", seq));
    EXPECT_EQ(Str(e, "/userId").size(), 16u);
    Str(e, "/anonymousId");
    for (const char* p : {"/context/ip", "/context/userAgent", "/context/locale",
                          "/context/timezone", "/context/library/name", "/context/library/version",
                          "/context/page/path", "/context/page/referrer", "/context/page/title",
                          "/context/page/url", "/context/page/search", "/context/os/name"}) {
      Str(e, p);
    }
    EXPECT_TRUE(Has(e, "/context/device/type"));
    EXPECT_TRUE(Has(e, "/context/screen/width"));
    EXPECT_TRUE(Has(e, "/context/screen/density"));
    EXPECT_TRUE(Has(e, "/context/traits"));
    if (type == "track") {
      const std::string name = Str(e, "/event");
      names.insert(name);
      EXPECT_TRUE(Has(e, "/properties"));
      if (name == "Order Completed") {
        simdjson::dom::array products;
        ASSERT_EQ(e.at_pointer("/properties/products").get(products), simdjson::SUCCESS);
        EXPECT_GE(products.size(), 1u);
        Str(e, "/properties/products/0/product_id");
        double revenue = 0;
        EXPECT_EQ(e.at_pointer("/properties/revenue").get(revenue), simdjson::SUCCESS);
        EXPECT_GT(revenue, 0);
        EXPECT_EQ(Str(e, "/properties/currency").size(), 3u);
      }
      if (name == "Product Added" || name == "Product Clicked") {
        Str(e, "/properties/product_id");
        Str(e, "/properties/sku");
      }
    } else if (type == "page") {
      Str(e, "/name");
      Str(e, "/properties/url");
    } else if (type == "identify") {
      Str(e, "/userId");
      Str(e, "/traits/email");
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{"identify", "page", "track"}));
  EXPECT_EQ(names, (std::set<std::string>{"Order Completed", "Product Added", "Product Clicked",
                                          "Product Viewed", "Products Searched"}));
  // Some visits come from a campaign.
  bool campaign = false;
  for (uint64_t seq = 0; seq < 200 && !campaign; ++seq) {
    std::string json;
    gen.AppendEvent(seq, FormatTimestamp(kNow), &json);
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(json).get(e), simdjson::SUCCESS);
    campaign = Has(e, "/context/campaign/source");
  }
  EXPECT_TRUE(campaign);
}

// Users come in sessions of kSessionEvents consecutive events, from a bounded population, so
// they return: what distinct-user counts and funnels over generated events need.
TEST(EventGeneratorTest, UsersHaveSessionsAndReturn) {
  EventGeneratorOptions o;
  o.users = 1000;
  EventGenerator gen(o);
  simdjson::dom::parser parser;
  const std::string ts = FormatTimestamp(kNow);
  std::map<std::string, std::set<uint64_t>> sessions_of;  // userId -> sessions
  std::map<std::string, std::set<std::string>> names_of;  // userId -> event names
  const uint64_t n = 20000;
  for (uint64_t seq = 0; seq < n; ++seq) {
    std::string json;
    gen.AppendEvent(seq, ts, &json);
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(json).get(e), simdjson::SUCCESS) << json;
    const std::string user = Str(e, "/userId");
    char expected[13];
    std::snprintf(expected, sizeof(expected), "%012llx",
                  static_cast<unsigned long long>(gen.UserFor(seq)));
    EXPECT_EQ(user, "usr_" + std::string(expected));
    EXPECT_LT(gen.UserFor(seq), 1000u);
    EXPECT_EQ(gen.UserFor(seq), gen.UserFor(seq - seq % EventGenerator::kSessionEvents));
    sessions_of[user].insert(seq / EventGenerator::kSessionEvents);
    if (Str(e, "/type") == "track") names_of[user].insert(Str(e, "/event"));
  }
  // 2,500 sessions over 1,000 users: nearly all users seen, most of them more than once.
  EXPECT_GT(sessions_of.size(), 850u);
  EXPECT_LE(sessions_of.size(), 1000u);
  size_t returning = 0, funnel = 0;
  for (const auto& [user, sessions] : sessions_of) returning += sessions.size() > 1;
  for (const auto& [user, names] : names_of) {
    funnel += names.count("Product Viewed") && names.count("Product Added") &&
              names.count("Order Completed");
  }
  EXPECT_GT(returning, sessions_of.size() / 2);
  // Some users, not all, did all three steps of a shop's funnel.
  EXPECT_GT(funnel, 50u);
  EXPECT_LT(funnel, sessions_of.size());
  // Another seed, other users for the same seqs.
  o.seed = 2;
  EventGenerator other(o);
  int same = 0;
  for (uint64_t seq = 0; seq < 800; seq += EventGenerator::kSessionEvents) {
    same += other.UserFor(seq) == gen.UserFor(seq);
  }
  EXPECT_LT(same, 10);
}

TEST(EventGeneratorTest, TrackOnlyMixHasOnlyTracks) {
  EventGeneratorOptions o;
  o.mix = EventMix::kTrackOnly;
  EventGenerator gen(o);
  simdjson::dom::parser parser;
  for (uint64_t seq = 0; seq < 1000; ++seq) {
    std::string json;
    gen.AppendEvent(seq, FormatTimestamp(kNow), &json);
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(json).get(e), simdjson::SUCCESS);
    EXPECT_EQ(Str(e, "/type"), "track");
  }
}

TEST(EventGeneratorTest, MessageIdsAreUniqueAcrossSeqAndRuns) {
  EventGeneratorOptions a;
  a.id_prefix = "r7";
  EventGeneratorOptions b = a;
  b.id_prefix = "r8";
  EventGenerator gen_a(a), gen_b(b);
  simdjson::dom::parser parser;
  std::set<std::string> ids;
  const std::string ts = FormatTimestamp(kNow);
  for (uint64_t seq = 0; seq < 20000; ++seq) {
    for (const EventGenerator* gen : {&gen_a, &gen_b}) {
      std::string json;
      gen->AppendEvent(seq, ts, &json);
      simdjson::dom::element e;
      ASSERT_EQ(parser.parse(json).get(e), simdjson::SUCCESS);
      EXPECT_TRUE(ids.insert(Str(e, "/messageId")).second) << "duplicate at seq " << seq;
    }
  }
  EXPECT_EQ(ids.size(), 40000u);
}

TEST(EventGeneratorTest, MeanSizeIsWithinTenPercentOfTarget) {
  for (size_t target : {2048u, 4096u, 16384u}) {
    EventGeneratorOptions o;
    o.event_bytes = target;
    o.seed = target;
    EventGenerator gen(o);
    size_t total = 0;
    const int n = 20000;
    for (int seq = 0; seq < n; ++seq) {
      std::string json;
      total += gen.AppendEvent(static_cast<uint64_t>(seq), FormatTimestamp(kNow), &json);
    }
    const double mean = static_cast<double>(total) / n;
    EXPECT_NEAR(mean, static_cast<double>(target), 0.1 * static_cast<double>(target))
        << "target " << target;
    EXPECT_NEAR(gen.MeanEventBytes(), static_cast<double>(target),
                0.02 * static_cast<double>(target));
  }
}

TEST(EventGeneratorTest, SameSeedSameEventsOtherSeedOtherEvents) {
  EventGeneratorOptions o;
  o.seed = 99;
  EventGenerator a(o), b(o);
  o.seed = 100;
  EventGenerator c(o);
  int differing = 0;
  for (uint64_t seq = 0; seq < 100; ++seq) {
    std::string ea, eb, ec;
    a.AppendEvent(seq, FormatTimestamp(kNow), &ea);
    b.AppendEvent(seq, FormatTimestamp(kNow), &eb);
    c.AppendEvent(seq, FormatTimestamp(kNow), &ec);
    EXPECT_EQ(ea, eb);
    differing += ea != ec;
  }
  EXPECT_GT(differing, 90);
}

// Batch and NDJSON bodies hold consecutive events; their framing is exact.
TEST(EventGeneratorTest, BodiesFrameConsecutiveEvents) {
  EventGeneratorOptions o;
  o.id_prefix = "r77";
  EventGenerator gen(o);
  simdjson::dom::parser parser;
  const std::string ts = FormatTimestamp(kNow);

  BodyBuilder batch(gen, BodyFormat::kBatch, false);
  std::string body;
  const BodyBuilder::Built built = batch.Build(500, 25, kNow, &body);
  EXPECT_EQ(built.events, 25u);
  simdjson::dom::element e;
  ASSERT_EQ(parser.parse(body).get(e), simdjson::SUCCESS);
  EXPECT_EQ(Str(e, "/sentAt"), ts);
  simdjson::dom::array events;
  ASSERT_EQ(e.at_pointer("/batch").get(events), simdjson::SUCCESS);
  ASSERT_EQ(events.size(), 25u);
  uint64_t seq = 500;
  for (simdjson::dom::element ev : events) {
    EXPECT_EQ(Str(ev, "/messageId"), MessageId("r77", seq++));
    EXPECT_EQ(Str(ev, "/timestamp"), ts);
  }
  const std::string head = R"({"batch":[)";
  const std::string foot = R"(],"sentAt":")" + ts + R"("})";
  EXPECT_EQ(body.substr(0, head.size()), head);
  EXPECT_EQ(body.substr(body.size() - foot.size()), foot);
  EXPECT_EQ(built.event_bytes, body.size() - head.size() - foot.size() - 24 /* commas */);

  BodyBuilder ndjson(gen, BodyFormat::kNdjson, false);
  const BodyBuilder::Built nd = ndjson.Build(7, 3, kNow, &body);
  EXPECT_EQ(nd.event_bytes, body.size() - 3);
  size_t start = 0;
  for (seq = 7; seq < 10; ++seq) {
    const size_t end = body.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    ASSERT_EQ(parser.parse(body.data() + start, end - start).get(e), simdjson::SUCCESS);
    EXPECT_EQ(Str(e, "/messageId"), MessageId("r77", seq));
    start = end + 1;
  }
  EXPECT_EQ(start, body.size());

  // A single event is AppendEvent's plus "sentAt".
  BodyBuilder single(gen, BodyFormat::kSingle, false);
  EXPECT_EQ(single.Build(3, 100, kNow, &body).events, 1u);  // count forced to 1
  std::string expected;
  gen.AppendEvent(3, ts, &expected);
  expected.resize(expected.size() - 1);
  expected += R"(,"sentAt":")" + ts + R"("})";
  EXPECT_EQ(body, expected);
}

TEST(EventGeneratorTest, BatchBodiesAverageTheTargetSize) {
  EventGenerator gen({});
  BodyBuilder batch(gen, BodyFormat::kBatch, false);
  std::string body;
  size_t bytes = 0, events = 0;
  for (uint64_t first = 0; first < uint64_t{200} * 100; first += 100) {
    const BodyBuilder::Built b = batch.Build(first, 100, kNow, &body);
    bytes += b.event_bytes;
    events += b.events;
  }
  EXPECT_NEAR(static_cast<double>(bytes) / static_cast<double>(events), 2048, 204.8);
}

// The gzip bodies' padding after the messageId: `"<spaces>,"userId"` -> `","userId"`.
std::string WithoutIdPadding(std::string body) {
  const std::string key = R"(,"userId")";
  std::string out;
  size_t from = 0;
  for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
    size_t quote = at;
    while (quote > from && body[quote - 1] == ' ') --quote;
    out.append(body, from, quote - from);
    from = at;
  }
  out.append(body, from, std::string::npos);
  return out;
}

// Spliced gzip bodies inflate to the plain body but for the whitespace after each messageId,
// for every framing, sizes that need more than one stored block, and seqs whose digit count
// changes within a body (the spliced tail has a fixed length whatever the seq).
TEST(EventGeneratorTest, GzipBodiesInflateToThePlainBody) {
  EventGeneratorOptions o;
  o.precompress = true;
  EventGenerator gen(o);
  simdjson::dom::parser parser;
  for (BodyFormat format : {BodyFormat::kBatch, BodyFormat::kSingle, BodyFormat::kNdjson}) {
    BodyBuilder plain(gen, format, false), gz(gen, format, true);
    for (int count : {1, 2, 100, 1000}) {
      for (uint64_t first : {uint64_t{0}, uint64_t{990}, uint64_t{99'999'999'950}}) {
        std::string p, z;
        const BodyBuilder::Built bp = plain.Build(first, count, kNow, &p);
        const BodyBuilder::Built bz = gz.Build(first, count, kNow, &z);
        ASSERT_EQ(z.substr(0, 2), "\x1f\x8b");
        const std::string inflated = Gunzip(z);
        EXPECT_EQ(WithoutIdPadding(inflated), p) << "count " << count << " first " << first;
        EXPECT_EQ(bz.event_bytes, bp.event_bytes) << "padding is not event bytes";
        if (format == BodyFormat::kBatch) {
          simdjson::dom::element doc;
          ASSERT_EQ(parser.parse(inflated).get(doc), simdjson::SUCCESS);
          simdjson::dom::array events;
          ASSERT_EQ(doc["batch"].get(events), simdjson::SUCCESS);
          uint64_t seq = first;
          for (simdjson::dom::element ev : events) {
            EXPECT_EQ(Str(ev, "/messageId"), MessageId("bench", seq++));
          }
        }
      }
      std::string p, z;
      plain.Build(1000, count, kNow, &p);
      gz.Build(1000, count, kNow, &z);
      ASSERT_NE(Gunzip(z), p) << "gzip bodies carry the padding";
      if (count >= 100 && format != BodyFormat::kSingle) {
        // Chained segments compress nearly as well as gzip over the whole body (events
        // compressed one by one would be ~3x larger than that).
        uLongf whole = compressBound(static_cast<uLong>(p.size()));
        std::string c(whole, '\0');
        ASSERT_EQ(
            compress2(reinterpret_cast<Bytef*>(c.data()), &whole,
                      reinterpret_cast<const Bytef*>(p.data()), static_cast<uLong>(p.size()), 6),
            Z_OK);
        EXPECT_LT(static_cast<double>(z.size()), 1.5 * static_cast<double>(whole));
      }
    }
  }
}

TEST(GzipSpliceTest, LongLiteralsSpanSeveralStoredBlocks) {
  const std::string big(200000, 'x');
  const PrecompressedSegment seg = Precompress("hello ", 6);
  GzipSplicer s;
  std::string out;
  s.Begin(&out);
  s.Segment(seg);
  s.Literal(big);
  s.Segment(seg);
  s.Finish();
  EXPECT_EQ(Gunzip(out), "hello " + big + "hello ");
  EXPECT_EQ(s.RawSize(), big.size() + 12);
}

}  // namespace
}  // namespace sluice::bench
