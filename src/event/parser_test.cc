#include "event/parser.h"
#include "event/uuid.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::event {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kReceived = 1'714'564'800 * kSecond;  // 2024-05-01T12:00:00Z

ParseOutput MustParse(Endpoint endpoint, std::string_view body, ParseOptions options = {}) {
  ParseOutput out;
  Status s = Parse(endpoint, body, kReceived, options, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// The single event of a body that must be valid.
Event OneEvent(Endpoint endpoint, std::string_view body) {
  ParseOutput out = MustParse(endpoint, body);
  EXPECT_EQ(out.events.size(), 1u);
  for (const auto& r : out.rejected) ADD_FAILURE() << "rejected: " << r.error;
  return out.events.empty() ? Event{} : out.events[0];
}

// The rejection of a body with exactly one event, which must be invalid.
RejectedEvent OneRejection(Endpoint endpoint, std::string_view body, ParseOptions options = {}) {
  ParseOutput out = MustParse(endpoint, body, options);
  EXPECT_EQ(out.events.size(), 0u);
  EXPECT_EQ(out.rejected.size(), 1u);
  return out.rejected.empty() ? RejectedEvent{} : out.rejected[0];
}

// The error for one event sent to /v1/track (or another single-event endpoint).
std::string TrackError(std::string_view body, Endpoint endpoint = Endpoint::kTrack) {
  const RejectedEvent r = OneRejection(endpoint, body);
  EXPECT_EQ(r.index, 0u);
  EXPECT_EQ(r.raw, body);
  return r.error;
}

Status ParseStatus(Endpoint endpoint, std::string_view body, ParseOptions options = {}) {
  ParseOutput out;
  return Parse(endpoint, body, kReceived, options, &out);
}

// ---- Endpoint shapes -------------------------------------------------------------------------

TEST(ParseShapes, Track) {
  const Event e = OneEvent(Endpoint::kTrack, R"({
    "userId": "u1", "anonymousId": "a1", "event": "Order Completed",
    "properties": {"total": 19.99, "currency": "EUR"},
    "context": {"ip": "192.0.2.1", "library": {"name": "analytics-node", "version": "1.0"}},
    "timestamp": "2024-05-01T11:00:00Z", "messageId": "m-1",
    "integrations": {"All": true}, "_metadata": {"bundled": []}, "unknownField": [1, 2]
  })");
  EXPECT_EQ(e.event_id, "m-1");
  EXPECT_EQ(e.type, "track");
  EXPECT_EQ(e.event, "Order Completed");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.anonymous_id, "a1");
  EXPECT_EQ(e.event_time_us, kReceived - 3600 * kSecond);
  EXPECT_FALSE(e.sent_at_us.has_value());
  EXPECT_EQ(e.received_at_us, kReceived);
  EXPECT_EQ(e.properties, R"({"total":19.99,"currency":"EUR"})");
  EXPECT_EQ(e.traits, "");
  EXPECT_EQ(e.context, R"({"ip":"192.0.2.1","library":{"name":"analytics-node","version":"1.0"}})");
  EXPECT_EQ(e.source, "");
}

TEST(ParseShapes, Identify) {
  const Event e = OneEvent(Endpoint::kIdentify,
                           R"({"userId":"u1","traits":{"email":"a@example.com","plan":"pro"}})");
  EXPECT_EQ(e.type, "identify");
  EXPECT_EQ(e.event, "");
  EXPECT_EQ(e.traits, R"({"email":"a@example.com","plan":"pro"})");
  EXPECT_EQ(e.properties, "");
}

TEST(ParseShapes, PageWithNameAndCategory) {
  const Event e = OneEvent(Endpoint::kPage,
                           R"({"anonymousId":"a1","name":"Pricing","category":"Docs",
                               "properties":{"path":"/pricing"}})");
  EXPECT_EQ(e.type, "page");
  EXPECT_EQ(e.event, "Pricing");
  EXPECT_EQ(e.properties, R"({"category":"Docs","path":"/pricing"})");
}

TEST(ParseShapes, PageCategoryDoesNotOverrideProperties) {
  const Event e = OneEvent(Endpoint::kPage,
                           R"({"anonymousId":"a1","category":"Docs",
                               "properties":{"category":"Blog"}})");
  EXPECT_EQ(e.event, "");
  EXPECT_EQ(e.properties, R"({"category":"Blog"})");
}

TEST(ParseShapes, PageWithoutNameOrProperties) {
  const Event e = OneEvent(Endpoint::kPage, R"({"anonymousId":"a1"})");
  EXPECT_EQ(e.type, "page");
  EXPECT_EQ(e.event, "");
  EXPECT_EQ(e.properties, "");
}

TEST(ParseShapes, Screen) {
  const Event e =
      OneEvent(Endpoint::kScreen, R"({"userId":"u1","name":"Home","properties":{"tab":2}})");
  EXPECT_EQ(e.type, "screen");
  EXPECT_EQ(e.event, "Home");
  EXPECT_EQ(e.properties, R"({"tab":2})");
}

TEST(ParseShapes, GroupStoresGroupIdInProperties) {
  const Event e =
      OneEvent(Endpoint::kGroup, R"({"userId":"u1","groupId":"acme","traits":{"employees":120}})");
  EXPECT_EQ(e.type, "group");
  EXPECT_EQ(e.properties, R"({"groupId":"acme"})");
  EXPECT_EQ(e.traits, R"({"employees":120})");
}

TEST(ParseShapes, GroupNumericGroupId) {
  const Event e = OneEvent(Endpoint::kGroup, R"({"userId":"u1","groupId":12345})");
  EXPECT_EQ(e.properties, R"({"groupId":12345})");
}

TEST(ParseShapes, AliasStoresPreviousIdInProperties) {
  const Event e = OneEvent(Endpoint::kAlias, R"({"userId":"u1","previousId":"anon-9"})");
  EXPECT_EQ(e.type, "alias");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.properties, R"({"previousId":"anon-9"})");
}

TEST(ParseShapes, TypeFieldIgnoredOnSingleEventEndpoints) {
  const Event e = OneEvent(Endpoint::kTrack, R"({"type":"identify","userId":"u","event":"E"})");
  EXPECT_EQ(e.type, "track");
  const Event e2 = OneEvent(Endpoint::kIdentify, R"({"type":"nonsense","userId":"u"})");
  EXPECT_EQ(e2.type, "identify");
}

TEST(ParseShapes, NullFieldsCountAsAbsent) {
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"userId":"u","anonymousId":null,"event":"E","properties":null,
                               "context":null,"timestamp":null,"sentAt":null,"messageId":null})");
  EXPECT_EQ(e.anonymous_id, "");
  EXPECT_EQ(e.properties, "");
  EXPECT_EQ(e.context, "");
  EXPECT_EQ(e.event_time_us, kReceived);
  EXPECT_FALSE(e.sent_at_us.has_value());
  EXPECT_TRUE(IsUuid7(e.event_id)) << e.event_id;
}

TEST(ParseShapes, BatchOfEveryType) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[
    {"type":"track","userId":"u","event":"A"},
    {"type":"identify","userId":"u","traits":{"x":1}},
    {"type":"page","userId":"u","name":"P"},
    {"type":"screen","userId":"u","name":"S"},
    {"type":"group","userId":"u","groupId":"g"},
    {"type":"alias","userId":"u","previousId":"p"}]})");
  ASSERT_EQ(out.events.size(), 6u);
  EXPECT_TRUE(out.rejected.empty());
  const std::vector<std::string> want = {"track", "identify", "page", "screen", "group", "alias"};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out.events[i].type, want[i]);
  EXPECT_EQ(out.events[0].event, "A");
  EXPECT_EQ(out.events[2].event, "P");
  EXPECT_EQ(out.events[3].event, "S");
  EXPECT_EQ(out.events[4].properties, R"({"groupId":"g"})");
  EXPECT_EQ(out.events[5].properties, R"({"previousId":"p"})");
}

TEST(ParseShapes, AnalyticsNodeBatch) {
  // What analytics-node 6.x sends to /v1/batch.
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[{
      "type":"track","event":"Signed Up","userId":"019mr8mf4r","properties":{"plan":"Enterprise"},
      "context":{"library":{"name":"@segment/analytics-node","version":"1.1.0"}},
      "timestamp":"2024-05-01T10:59:59.500Z","integrations":{},
      "messageId":"node-next-1714561199500-2f1e1b1e-3ef1-4f37-9a2e-4b6f1f4d5b10",
      "_metadata":{"nodeVersion":"20.11.0","jsRuntime":"node"}}],
    "sentAt":"2024-05-01T11:00:00.000Z","writeKey":"wk_123"})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.write_key, "wk_123");
  const Event& e = out.events[0];
  EXPECT_EQ(e.event_id, "node-next-1714561199500-2f1e1b1e-3ef1-4f37-9a2e-4b6f1f4d5b10");
  EXPECT_EQ(e.event_time_us, kReceived - 500'000);
  ASSERT_TRUE(e.sent_at_us.has_value());
  EXPECT_EQ(*e.sent_at_us, kReceived - 3600 * kSecond);
}

TEST(ParseShapes, RudderStackOriginalTimestamp) {
  // RudderStack SDKs send originalTimestamp and sentAt, and no timestamp.
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"anonymousId":"a","event":"E","channel":"web",
                               "originalTimestamp":"2024-05-01T11:59:50.000Z",
                               "sentAt":"2024-05-01T12:00:00.000Z"})");
  EXPECT_EQ(e.event_time_us, kReceived - 10 * kSecond);
}

TEST(ParseShapes, TimestampWinsOverOriginalTimestamp) {
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"anonymousId":"a","event":"E",
                               "timestamp":"2024-05-01T11:00:00Z",
                               "originalTimestamp":"2024-05-01T11:59:50Z"})");
  EXPECT_EQ(e.event_time_us, kReceived - 3600 * kSecond);
}

// ---- Normalisation -----------------------------------------------------------------------------

TEST(ParseNormalise, ClockSkewCorrection) {
  // The client clock runs an hour and a bit behind: sentAt S, timestamp S - 5 s.
  // event_time = received_at - (sentAt - timestamp) = T - 5 s.
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"userId":"u","event":"E",
                               "sentAt":"2024-05-01T10:47:13.250Z",
                               "timestamp":"2024-05-01T10:47:08.250Z"})");
  EXPECT_EQ(e.event_time_us, kReceived - 5 * kSecond);
  ASSERT_TRUE(e.sent_at_us.has_value());
  EXPECT_EQ(*e.sent_at_us, kReceived - (72 * 60 + 47) * kSecond + 250'000);
  EXPECT_EQ(e.received_at_us, kReceived);
}

TEST(ParseNormalise, ClockSkewCorrectionWithOffsets) {
  // Same instant written with different offsets: no skew, so event_time = T - 30 s.
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"userId":"u","event":"E",
                               "sentAt":"2024-05-01T14:00:00+02:00",
                               "timestamp":"2024-05-01T06:59:30-05:00"})");
  EXPECT_EQ(e.event_time_us, kReceived - 30 * kSecond);
}

TEST(ParseNormalise, TimestampWithoutSentAt) {
  const Event e = OneEvent(Endpoint::kTrack,
                           R"({"userId":"u","event":"E","timestamp":"2023-01-02T03:04:05.678Z"})");
  EXPECT_EQ(e.event_time_us, 1'672'628'645'678'000);
  EXPECT_FALSE(e.sent_at_us.has_value());
}

TEST(ParseNormalise, NeitherTimestampNorSentAt) {
  const Event e = OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E"})");
  EXPECT_EQ(e.event_time_us, kReceived);
  EXPECT_FALSE(e.sent_at_us.has_value());
}

TEST(ParseNormalise, SentAtWithoutTimestamp) {
  const Event e =
      OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","sentAt":"2024-05-01T11:00:00Z"})");
  EXPECT_EQ(e.event_time_us, kReceived);
  ASSERT_TRUE(e.sent_at_us.has_value());
  EXPECT_EQ(*e.sent_at_us, kReceived - 3600 * kSecond);
}

TEST(ParseNormalise, MessageIdKept) {
  EXPECT_EQ(
      OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","messageId":"abc-123"})").event_id,
      "abc-123");
}

TEST(ParseNormalise, Uuid7MadeWithoutMessageId) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[
      {"type":"track","userId":"u","event":"E"},
      {"type":"track","userId":"u","event":"E","messageId":""}]})");
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_TRUE(IsUuid7(out.events[0].event_id)) << out.events[0].event_id;
  EXPECT_TRUE(IsUuid7(out.events[1].event_id)) << out.events[1].event_id;
  EXPECT_LT(out.events[0].event_id, out.events[1].event_id);
}

TEST(ParseNormalise, NumericIdsStoredAsDecimalText) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[
      {"type":"track","userId":42,"event":"E"},
      {"type":"track","userId":-7,"anonymousId":18446744073709551615,"event":"E"},
      {"type":"track","anonymousId":12.5,"event":"E"},
      {"type":"track","userId":1e20,"event":"E"}]})");
  ASSERT_EQ(out.events.size(), 4u);
  EXPECT_EQ(out.events[0].user_id, "42");
  EXPECT_EQ(out.events[1].user_id, "-7");
  EXPECT_EQ(out.events[1].anonymous_id, "18446744073709551615");
  EXPECT_EQ(out.events[2].anonymous_id, "12.5");
  EXPECT_EQ(out.events[3].user_id, "100000000000000000000");
}

TEST(ParseNormalise, ObjectsStoredCompactWithStringsAndNumbersPreserved) {
  const Event e = OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"Caf\u00e9 \u2615",
      "properties": {
        "name": "caf\u00e9 \"quoted\" back\\slash\nnew line\ttab",
        "emoji": "😀 \ud83d\ude00", "ctl": "\u0001\u001f", "slash": "a\/b",
        "price": 19.99, "qty": 2, "neg": -5, "big": 18446744073709551615, "f": 1.0,
        "e": 1e20, "tiny": 1.5e-7, "t": true, "n": null, "arr": [ 1, [ ], { } ], "obj": { }
      }})");
  EXPECT_EQ(e.event, "Café ☕");
  EXPECT_EQ(e.properties,
            R"({"name":"café \"quoted\" back\\slash\nnew line\ttab",)"
            R"("emoji":"😀 😀","ctl":"\u0001\u001f","slash":"a/b",)"
            R"("price":19.99,"qty":2,"neg":-5,"big":18446744073709551615,"f":1.0,)"
            R"("e":1e+20,"tiny":1.5e-07,"t":true,"n":null,"arr":[1,[],{}],"obj":{}})");
}

TEST(ParseNormalise, OutputIsResetBetweenCalls) {
  ParseOutput out;
  ASSERT_TRUE(Parse(Endpoint::kBatch,
                    R"({"writeKey":"k","batch":[{"type":"track","userId":"u","event":"E"},1]})",
                    kReceived, {}, &out)
                  .ok());
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_TRUE(Parse(Endpoint::kIdentify, R"({"userId":"u"})", kReceived, {}, &out).ok());
  EXPECT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].type, "identify");
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_EQ(out.write_key, "");
}

// ---- Validation: one rule per test, each accepted and rejected -------------------------------

TEST(ParseValidate, EventMustBeObject) {
  const ParseOutput out = MustParse(Endpoint::kBatch,
                                    R"({"batch":[{"type":"track","userId":"u","event":"E"},
                                                 [1, 2], "x", null]})");
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_EQ(out.rejected.size(), 3u);
  EXPECT_EQ(out.rejected[0].index, 1u);
  EXPECT_EQ(out.rejected[0].error, "event 1: an event must be a JSON object, got array");
  EXPECT_EQ(out.rejected[0].raw, "[1,2]");
  EXPECT_EQ(out.rejected[1].index, 2u);
  EXPECT_EQ(out.rejected[1].error, "event 2: an event must be a JSON object, got string");
  EXPECT_EQ(out.rejected[1].raw, "\"x\"");
  EXPECT_EQ(out.rejected[2].index, 3u);
  EXPECT_EQ(out.rejected[2].error, "event 3: an event must be a JSON object, got null");
}

TEST(ParseValidate, SingleEndpointBodyMustBeObject) {
  const Status s = ParseStatus(Endpoint::kTrack, R"([{"userId":"u","event":"E"}])");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "a /v1/track body must be a JSON object, got array");
}

TEST(ParseValidate, NeedsUserIdOrAnonymousId) {
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E"})").user_id, "u");
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"anonymousId":"a","event":"E"})").anonymous_id, "a");
  const std::string want = "needs \"userId\" or \"anonymousId\" (a non-empty string or a number)";
  EXPECT_EQ(TrackError(R"({"event":"E"})"), want);
  EXPECT_EQ(TrackError(R"({"userId":"","anonymousId":"","event":"E"})"), want);
  EXPECT_EQ(TrackError(R"({"userId":null,"event":"E"})"), want);
}

TEST(ParseValidate, IdsMustBeStringsOrNumbers) {
  EXPECT_EQ(TrackError(R"({"userId":true,"anonymousId":"a","event":"E"})"),
            "\"userId\" must be a string or a number, got boolean");
  EXPECT_EQ(TrackError(R"({"userId":"u","anonymousId":{"id":1},"event":"E"})"),
            "\"anonymousId\" must be a string or a number, got object");
}

TEST(ParseValidate, TypeRequiredInBatch) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[
      {"userId":"u","event":"E"},
      {"type":"Track","userId":"u","event":"E"},
      {"type":7,"userId":"u","event":"E"},
      {"type":"track","userId":"u","event":"E"}]})");
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_EQ(out.rejected.size(), 3u);
  EXPECT_EQ(out.rejected[0].index, 0u);
  EXPECT_EQ(out.rejected[0].error,
            "event 0: needs a \"type\": one of track, identify, page, screen, group, alias");
  EXPECT_EQ(out.rejected[1].index, 1u);
  EXPECT_EQ(out.rejected[1].error,
            "event 1: \"type\" \"Track\" is not one of track, identify, page, screen, group, "
            "alias");
  EXPECT_EQ(out.rejected[2].index, 2u);
  EXPECT_EQ(out.rejected[2].error,
            "event 2: \"type\" must be a string (one of track, identify, page, screen, group, "
            "alias), got number");
}

TEST(ParseValidate, TypeRequiredInEvents) {
  const ParseOutput out = MustParse(Endpoint::kEvents, R"({"userId":"u","event":"E"})");
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].error,
            "event 0: needs a \"type\": one of track, identify, page, screen, group, alias");
}

TEST(ParseValidate, EveryRejectionHasAReasonCode) {
  const std::string big(40'000, 'x');
  ParseOutput out = MustParse(
      Endpoint::kBatch,
      R"({"batch":[)"
      R"({"type":"track","event":"E"},)"                                   // 0 missing_user
      R"({"type":"track","userId":"u"},)"                                  // 1 missing_event
      R"({"type":"group","userId":"u"},)"                                  // 2 missing_group_id
      R"({"type":"alias","userId":"u"},)"                                  // 3 missing_previous_id
      R"({"type":"track","userId":"u","event":"E","properties":[]},)"      // 4 not_object
      R"({"type":"track","userId":"u","event":"E","timestamp":"never"},)"  // 5 bad_timestamp
      R"({"type":"track","userId":"u","event":"E","messageId":1},)"        // 6 bad_message_id
      R"({"type":"nope","userId":"u"},)"                                   // 7 bad_type
      R"({"userId":"u"},)"                                                 // 8 bad_type
      R"(7,)"                                                              // 9 not_object
      R"({"type":"track","userId":"u","event":"E","properties":{"p":")" + big + R"("}})"  // 10
      R"(]})");
  const std::vector<std::string> want = {
      "missing_user",  "missing_event",  "missing_group_id", "missing_previous_id",
      "not_object",    "bad_timestamp",  "bad_message_id",   "bad_type",
      "bad_type",      "not_object",     "too_large"};
  ASSERT_EQ(out.rejected.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(out.rejected[i].reason, want[i]) << out.rejected[i].error;
  }
  ParseOutput nd = MustParse(Endpoint::kEvents, "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}\n{oops\n");
  ASSERT_EQ(nd.rejected.size(), 1u);
  EXPECT_EQ(nd.rejected[0].reason, "not_json");
}

TEST(ParseValidate, TrackNeedsEventName) {
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"Clicked"})").event, "Clicked");
  EXPECT_EQ(TrackError(R"({"userId":"u"})"), "track event needs a non-empty string \"event\"");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":""})"),
            "track event needs a non-empty string \"event\"");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":12})"),
            "track event needs a non-empty string \"event\", got number");
}

TEST(ParseValidate, PropertiesMustBeObject) {
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","properties":{}})").properties,
            "{}");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","properties":[1]})"),
            "\"properties\" must be a JSON object, got array");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","properties":"x"})"),
            "\"properties\" must be a JSON object, got string");
}

TEST(ParseValidate, TraitsMustBeObject) {
  EXPECT_EQ(OneEvent(Endpoint::kIdentify, R"({"userId":"u","traits":{"a":1}})").traits,
            R"({"a":1})");
  EXPECT_EQ(TrackError(R"({"userId":"u","traits":5})", Endpoint::kIdentify),
            "\"traits\" must be a JSON object, got number");
}

TEST(ParseValidate, ContextMustBeObject) {
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","context":{"a":1}})").context,
            R"({"a":1})");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","context":true})"),
            "\"context\" must be a JSON object, got boolean");
}

TEST(ParseValidate, TimestampMustBeIso8601) {
  EXPECT_EQ(
      OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","timestamp":"2024-05-01T12:00:01Z"})")
          .event_time_us,
      kReceived + kSecond);
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","timestamp":"yesterday"})"),
            "\"timestamp\" is not an ISO-8601 time: \"yesterday\" (expected YYYY-MM-DD, or "
            "YYYY-MM-DDTHH:MM:SS[.fraction] with Z or an offset like +02:00)");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","timestamp":"2023-02-29T00:00:00Z"})"),
            "\"timestamp\" is not an ISO-8601 time: \"2023-02-29T00:00:00Z\" (day 29 is out of "
            "range for February 2023)");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","timestamp":1714564800000})"),
            "\"timestamp\" must be an ISO-8601 time string, got number");
}

TEST(ParseValidate, SentAtMustBeIso8601) {
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","sentAt":"2024-05-01T25:00:00Z"})"),
            "\"sentAt\" is not an ISO-8601 time: \"2024-05-01T25:00:00Z\" (hour 25 is out of "
            "range 00-23)");
}

TEST(ParseValidate, OriginalTimestampMustBeIso8601) {
  const std::string error = TrackError(R"({"userId":"u","event":"E","originalTimestamp":"now"})");
  EXPECT_TRUE(error.starts_with("\"originalTimestamp\" is not an ISO-8601 time: \"now\" ("))
      << error;
}

TEST(ParseValidate, MessageIdMustBeStringOfAtMost256Bytes) {
  const std::string id256(256, 'm');
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E","messageId":")" + id256 + "\"}")
                .event_id,
            id256);
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","messageId":")" + id256 + "m\"}"),
            "\"messageId\" is 257 bytes, over the 256-byte limit");
  EXPECT_EQ(TrackError(R"({"userId":"u","event":"E","messageId":17})"),
            "\"messageId\" must be a string, got number");
}

TEST(ParseValidate, GroupNeedsGroupId) {
  EXPECT_EQ(TrackError(R"({"userId":"u"})", Endpoint::kGroup),
            "group event needs \"groupId\" (a non-empty string or a number)");
  EXPECT_EQ(TrackError(R"({"userId":"u","groupId":""})", Endpoint::kGroup),
            "group event needs \"groupId\" (a non-empty string or a number)");
  EXPECT_EQ(TrackError(R"({"userId":"u","groupId":["g"]})", Endpoint::kGroup),
            "group event needs \"groupId\" (a non-empty string or a number), got array");
}

TEST(ParseValidate, AliasNeedsPreviousId) {
  EXPECT_EQ(OneEvent(Endpoint::kAlias, R"({"userId":"u","previousId":7})").properties,
            R"({"previousId":7})");
  EXPECT_EQ(TrackError(R"({"userId":"u"})", Endpoint::kAlias),
            "alias event needs \"previousId\" (a non-empty string or a number)");
  EXPECT_EQ(TrackError(R"({"userId":"u","previousId":false})", Endpoint::kAlias),
            "alias event needs \"previousId\" (a non-empty string or a number), got boolean");
}

TEST(ParseValidate, PageAndScreenNameMustBeString) {
  EXPECT_EQ(TrackError(R"({"userId":"u","name":3})", Endpoint::kPage),
            "\"name\" must be a string, got number");
  EXPECT_EQ(TrackError(R"({"userId":"u","name":{}})", Endpoint::kScreen),
            "\"name\" must be a string, got object");
  EXPECT_EQ(TrackError(R"({"userId":"u","category":1})", Endpoint::kPage),
            "\"category\" must be a string, got number");
}

TEST(ParseValidate, MaxEventBytesBoundary) {
  // Compact already, so its size as compact JSON is its size.
  const std::string body = R"({"userId":"u","event":"E","properties":{"pad":"xxxxxxxxxx"}})";
  ParseOptions at;
  at.max_event_bytes = body.size();
  ParseOutput out = MustParse(Endpoint::kTrack, body, at);
  EXPECT_EQ(out.events.size(), 1u);
  EXPECT_TRUE(out.rejected.empty());

  ParseOptions under = at;
  under.max_event_bytes = body.size() - 1;
  const RejectedEvent r = OneRejection(Endpoint::kTrack, body, under);
  EXPECT_EQ(r.error, "event is " + std::to_string(body.size()) + " bytes, over max_event_bytes (" +
                         std::to_string(body.size() - 1) + ")");
  EXPECT_EQ(r.raw, body.substr(0, body.size() - 1));  // raw bytes truncated to the limit
}

TEST(ParseValidate, MaxEventBytesCountsCompactJsonInBatch) {
  // Whitespace the client added does not count; the element is measured as compact JSON.
  const std::string event = R"({"type":"track","userId":"u","event":"E"})";
  const std::string body = "{\"batch\":[" + event +
                           ",  {\"type\" : \"track\", \"userId\":\"u\","
                           " \"event\":\"E\", \"x\":1}]}";
  ParseOptions options;
  options.max_event_bytes = event.size();
  const ParseOutput out = MustParse(Endpoint::kBatch, body, options);
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].index, 1u);
  EXPECT_EQ(out.rejected[0].error, "event 1: event is " + std::to_string(event.size() + 6) +
                                       " bytes, over max_event_bytes (" +
                                       std::to_string(event.size()) + ")");
}

TEST(ParseValidate, MaxBatchEvents) {
  const std::string e = R"({"type":"track","userId":"u","event":"E"})";
  ParseOptions three;
  three.max_batch_events = 3;
  EXPECT_EQ(MustParse(Endpoint::kBatch, "{\"batch\":[" + e + "," + e + "," + e + "]}", three)
                .events.size(),
            3u);
  ParseOptions two;
  two.max_batch_events = 2;
  for (const auto& [endpoint, body] : std::vector<std::pair<Endpoint, std::string>>{
           {Endpoint::kBatch, "{\"batch\":[" + e + "," + e + "," + e + "]}"},
           {Endpoint::kEvents, "[" + e + "," + e + "," + e + "]"},
           {Endpoint::kEvents, e + "\n" + e + "\n\n" + e + "\n"}}) {
    SCOPED_TRACE(body);
    const Status s = ParseStatus(endpoint, body, two);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), "body has 3 events, over max_batch_events (2)");
  }
}

// ---- Batch ---------------------------------------------------------------------------------

TEST(ParseBatch, MixedValidAndInvalid) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[
      {"type":"track","userId":"u","event":"First"},
      {"type":"track","userId":"u"},
      {"type":"identify","userId":"u","traits":{"n":"Second"}},
      {"type":"track", "userId" : "u", "event":"E", "properties": [1,2]},
      {"type":"track","userId":"u","event":"Third"}]})");
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[0].event, "First");
  EXPECT_EQ(out.events[1].traits, R"({"n":"Second"})");
  EXPECT_EQ(out.events[2].event, "Third");
  ASSERT_EQ(out.rejected.size(), 2u);
  EXPECT_EQ(out.rejected[0].index, 1u);
  EXPECT_EQ(out.rejected[0].error, "event 1: track event needs a non-empty string \"event\"");
  EXPECT_EQ(out.rejected[0].raw, R"({"type":"track","userId":"u"})");
  EXPECT_EQ(out.rejected[1].index, 3u);
  EXPECT_EQ(out.rejected[1].error, "event 3: \"properties\" must be a JSON object, got array");
  EXPECT_EQ(out.rejected[1].raw, R"({"type":"track","userId":"u","event":"E","properties":[1,2]})");
}

TEST(ParseBatch, SentAtAndContextInherited) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({
      "sentAt":"2024-05-01T11:00:00Z", "context":{"library":{"name":"x"}},
      "batch":[
        {"type":"track","userId":"u","event":"A","timestamp":"2024-05-01T10:59:00Z"},
        {"type":"track","userId":"u","event":"B","timestamp":"2024-05-01T10:59:00Z",
         "sentAt":"2024-05-01T10:59:30Z","context":{"own":true}}]})");
  ASSERT_EQ(out.events.size(), 2u);
  // A: batch sentAt, skew 1 h: T - 60 s.
  EXPECT_EQ(out.events[0].event_time_us, kReceived - 60 * kSecond);
  EXPECT_EQ(*out.events[0].sent_at_us, kReceived - 3600 * kSecond);
  EXPECT_EQ(out.events[0].context, R"({"library":{"name":"x"}})");
  // B: its own sentAt and context win.
  EXPECT_EQ(out.events[1].event_time_us, kReceived - 30 * kSecond);
  EXPECT_EQ(*out.events[1].sent_at_us, kReceived - 3600 * kSecond - 30 * kSecond);
  EXPECT_EQ(out.events[1].context, R"({"own":true})");
}

TEST(ParseBatch, InvalidBatchSentAtRejectsEventsThatUseIt) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"sentAt":"soon","batch":[
      {"type":"track","userId":"u","event":"A"},
      {"type":"track","userId":"u","event":"B","sentAt":"2024-05-01T12:00:00Z"}]})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].event, "B");
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].index, 0u);
  EXPECT_TRUE(out.rejected[0].error.starts_with(
      "event 0: batch \"sentAt\" is not an ISO-8601 time: \"soon\" ("))
      << out.rejected[0].error;
}

TEST(ParseBatch, InvalidBatchContextRejectsEventsThatUseIt) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"context":[1],"batch":[
      {"type":"track","userId":"u","event":"A"},
      {"type":"track","userId":"u","event":"B","context":{}}]})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].context, "{}");
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].error, "event 0: batch \"context\" must be a JSON object, got array");
}

TEST(ParseBatch, WriteKeyExtracted) {
  EXPECT_EQ(MustParse(Endpoint::kBatch, R"({"writeKey":"wk_1","batch":[]})").write_key, "wk_1");
  EXPECT_EQ(MustParse(Endpoint::kBatch, R"({"writeKey":5,"batch":[]})").write_key, "");
  EXPECT_EQ(
      MustParse(Endpoint::kTrack, R"({"writeKey":"wk_2","userId":"u","event":"E"})").write_key,
      "wk_2");
  // Not taken from an event inside a batch.
  EXPECT_EQ(MustParse(Endpoint::kBatch,
                      R"({"batch":[{"type":"track","userId":"u","event":"E","writeKey":"x"}]})")
                .write_key,
            "");
}

TEST(ParseBatch, EmptyBatchIsOkWithNoEvents) {
  const ParseOutput out = MustParse(Endpoint::kBatch, R"({"batch":[]})");
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(out.rejected.empty());
}

TEST(ParseBatch, WrongTopLevelShape) {
  EXPECT_EQ(ParseStatus(Endpoint::kBatch, R"([{"type":"track"}])").message(),
            "a /v1/batch body must be a JSON object like {\"batch\":[...]}, got array");
  EXPECT_EQ(ParseStatus(Endpoint::kBatch, R"({"events":[]})").message(),
            "a /v1/batch body needs a \"batch\" array of events");
  EXPECT_EQ(ParseStatus(Endpoint::kBatch, R"({"batch":{"type":"track"}})").message(),
            "\"batch\" must be a JSON array of events, got object");
  EXPECT_EQ(ParseStatus(Endpoint::kBatch, R"({"batch":{}})").code(), StatusCode::kInvalidArgument);
}

// ---- /v1/events ----------------------------------------------------------------------------

TEST(ParseEvents, JsonArrayWithBadElement) {
  const ParseOutput out = MustParse(Endpoint::kEvents, R"(  [
      {"type":"track","userId":"u","event":"A"},
      {"type":"track","event":"B"},
      {"type":"page","userId":"u","name":"C"}])");
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].event, "A");
  EXPECT_EQ(out.events[1].event, "C");
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].index, 1u);
  EXPECT_EQ(out.rejected[0].raw, R"({"type":"track","event":"B"})");
  EXPECT_EQ(out.rejected[0].error,
            "event 1: needs \"userId\" or \"anonymousId\" (a non-empty string or a number)");
}

TEST(ParseEvents, NdjsonWithBadLine) {
  const std::string body =
      "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"A\"}\n"
      "\n"
      "{\"type\":\"track\",\"userId\":\"u\",\"event\":\n"
      "   \r\n"
      "{\"type\":\"track\",\"event\":\"B\"}\r\n"
      "{\"type\":\"identify\", \"userId\":\"u\"}";
  const ParseOutput out = MustParse(Endpoint::kEvents, body);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].event, "A");
  EXPECT_EQ(out.events[1].type, "identify");
  ASSERT_EQ(out.rejected.size(), 2u);
  // Indexes count non-empty lines; the message names the line of the body.
  EXPECT_EQ(out.rejected[0].index, 1u);
  EXPECT_EQ(out.rejected[0].raw, "{\"type\":\"track\",\"userId\":\"u\",\"event\":");
  EXPECT_EQ(out.rejected[0].error.substr(0, 39), "event 1: line 3 is not valid JSON: The ");
  EXPECT_NE(out.rejected[0].error.find("(at byte 37, the end)"), std::string::npos)
      << out.rejected[0].error;
  EXPECT_EQ(out.rejected[1].index, 2u);
  EXPECT_EQ(out.rejected[1].raw, "{\"type\":\"track\",\"event\":\"B\"}");  // original bytes
  EXPECT_EQ(out.rejected[1].error,
            "event 2: needs \"userId\" or \"anonymousId\" (a non-empty string or a number)");
}

TEST(ParseEvents, NdjsonKeepsOriginalLineAsRaw) {
  const ParseOutput out = MustParse(Endpoint::kEvents,
                                    "{\"type\":\"track\",  \"event\":\"E\"}\n"
                                    "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}\n");
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].raw, "{\"type\":\"track\",  \"event\":\"E\"}");
}

TEST(ParseEvents, NdjsonWithNoValidLineIsInvalidArgument) {
  const Status s = ParseStatus(Endpoint::kEvents, "hello\nworld\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.message().starts_with("body is not JSON or NDJSON: line 1 is not valid JSON: "))
      << s.message();
}

TEST(ParseEvents, PrettyPrintedSingleObject) {
  const ParseOutput out = MustParse(Endpoint::kEvents,
                                    "{\n  \"type\": \"track\",\n"
                                    "  \"userId\": \"u\",\n  \"event\": \"E\"\n}\n");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].event, "E");
  EXPECT_TRUE(out.rejected.empty());
}

TEST(ParseEvents, EmptyBodyIsInvalidArgument) {
  EXPECT_EQ(ParseStatus(Endpoint::kEvents, " \n\r\n").message(),
            "body is empty: expected a JSON array or one JSON object per line");
  EXPECT_EQ(ParseStatus(Endpoint::kTrack, "").message(), "body is empty");
  EXPECT_EQ(ParseStatus(Endpoint::kBatch, "  ").message(), "body is empty");
}

TEST(ParseEvents, TopLevelArrayMustBeValidJson) {
  const Status s = ParseStatus(Endpoint::kEvents, R"([{"type":"track"},)");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().substr(0, 25), "body is not valid JSON: T");
}

TEST(ParseLimits, LargeBodyThenSmallBody) {
  // Over a megabyte: the thread's parser is dropped afterwards; the next parse still works.
  std::string body = "{\"batch\":[";
  const std::string pad(400, 'p');
  for (int i = 0; i < 3000; ++i) {
    if (i > 0) body += ',';
    body += R"({"type":"track","userId":"u","event":"E","properties":{"pad":")" + pad + "\"}}";
  }
  body += "]}";
  ASSERT_GT(body.size(), 1u << 20);
  EXPECT_EQ(MustParse(Endpoint::kBatch, body).events.size(), 3000u);
  EXPECT_EQ(OneEvent(Endpoint::kTrack, R"({"userId":"u","event":"E"})").event, "E");
}

TEST(ParseLimits, DeepNestingIsRefused) {
  const std::string body = R"({"userId":"u","event":"E","properties":{"a":)" +
                           std::string(5000, '[') + std::string(5000, ']') + "}}";
  const Status s = ParseStatus(Endpoint::kTrack, body);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.message().starts_with("body is not valid JSON: ")) << s.message();
}

// ---- Not JSON ------------------------------------------------------------------------------

TEST(ParseNotJson, EveryEndpointRefusesTheBody) {
  for (Endpoint e : {Endpoint::kTrack, Endpoint::kIdentify, Endpoint::kPage, Endpoint::kScreen,
                     Endpoint::kGroup, Endpoint::kAlias, Endpoint::kBatch}) {
    const Status s = ParseStatus(e, "userId=u&event=E");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().substr(0, 24), "body is not valid JSON: ");
  }
}

TEST(ParseNotJson, MessageGivesTheByteOffset) {
  const Status s = ParseStatus(Endpoint::kTrack, R"({"userId":"u", "event":"E",})");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("(at byte 27, near \"}\")"), std::string::npos) << s.message();

  const Status s2 = ParseStatus(Endpoint::kTrack, R"({"userId" "u"})");
  EXPECT_NE(s2.message().find("(at byte 10, near \"\\\"u\\\"}\")"), std::string::npos)
      << s2.message();
}

TEST(ParseNotJson, InvalidUtf8GivesTheByteOffset) {
  const Status s = ParseStatus(Endpoint::kTrack, "{\"userId\":\"u\xff\"}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("(at byte 12"), std::string::npos) << s.message();
}

TEST(ParseNotJson, TrailingContentIsRefused) {
  const Status s = ParseStatus(Endpoint::kTrack, R"({"userId":"u","event":"E"} {})");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("(at byte 27"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sluice::event
