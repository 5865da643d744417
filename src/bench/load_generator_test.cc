#include "bench/load_generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <algorithm>
#include <chrono>
#include <set>
#include <stop_token>
#include <thread>

#include "bench/test_http_server.h"

namespace sluice::bench {
namespace {

using testing::TestHttpServer;
using testing::TestReply;
using testing::TestRequest;

// What the server saw. Touched only on the server thread; read after Stop().
struct Seen {
  uint64_t requests = 0, events = 0;
  std::map<int, uint64_t> statuses;
  uint64_t events_in_200 = 0;
  uint64_t dropped = 0;
  uint64_t bad_requests = 0;  // wrong path, framing, encoding or auth
  std::set<std::string> message_ids;
  uint64_t duplicate_ids = 0;
  std::map<std::string, uint64_t> requests_by_path;
  std::vector<std::string> request_ids;  // the messageIds of the request being handled
  // Requests answered 200 by (first seq, events), from the ids they carried (id_prefix set).
  std::vector<AckedRange> ranges_200;
  uint64_t nonconsecutive_requests = 0;  // a request whose ids were not prefix-seq, seq+1, ...
  std::map<uint64_t, uint64_t> events_per_request;  // size -> requests
};

struct Expect {
  std::string path = "/v1/batch";  // "": /v1/track or /v1/batch, as the mix seed sends
  std::string id_prefix;           // when set, check that ids are id_prefix-<seq>, consecutive
  std::string content_type = "application/json";
  std::string encoding;       // "" or "gzip"
  std::string authorization;  // "" = must be absent
  int answer_503_every = 10;
  int drop_every = 0;   // close without answering
  int close_every = 0;  // answer, then Connection: close
  std::chrono::milliseconds delay{0};
  std::string ok_body = R"({"success":true})";
};

// Counts the events in a body by parsing it as the endpoint's framing; -1 if it does not parse.
int64_t CountEvents(simdjson::dom::parser& parser, const std::string& path, const std::string& body,
                    Seen& seen) {
  auto note = [&](simdjson::dom::element e) {
    std::string_view id;
    if (e["messageId"].get(id) != simdjson::SUCCESS) return false;
    if (!seen.message_ids.emplace(id).second) ++seen.duplicate_ids;
    seen.request_ids.emplace_back(id);
    return true;
  };
  simdjson::dom::element doc;
  if (path == "/v1/events") {
    int64_t n = 0;
    size_t start = 0;
    while (start < body.size()) {
      const size_t end = body.find('\n', start);
      if (end == std::string::npos) return -1;
      if (parser.parse(body.data() + start, end - start).get(doc) != simdjson::SUCCESS ||
          !note(doc)) {
        return -1;
      }
      ++n;
      start = end + 1;
    }
    return n;
  }
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return -1;
  // /v1/noop takes either body: the seed mix sends it single events and batches.
  if (path == "/v1/track" || (path == "/v1/noop" && doc["batch"].error() != simdjson::SUCCESS)) {
    std::string_view type;
    if (doc["type"].get(type) != simdjson::SUCCESS || type != "track" || !note(doc)) return -1;
    return 1;
  }
  simdjson::dom::array batch;
  std::string_view sent_at;
  if (doc["batch"].get(batch) != simdjson::SUCCESS ||
      doc["sentAt"].get(sent_at) != simdjson::SUCCESS) {
    return -1;
  }
  for (simdjson::dom::element e : batch) {
    if (!note(e)) return -1;
  }
  return static_cast<int64_t>(batch.size());
}

class Server {
 public:
  explicit Server(Expect expect)
      : expect_(std::move(expect)), server_([this](const TestRequest& r) { return Handle(r); }) {}

  std::string Start() {
    EXPECT_TRUE(server_.Start().ok());
    return server_.Url();
  }
  const Seen& Stop() {
    server_.Stop();
    return seen_;
  }

 private:
  TestReply Handle(const TestRequest& r) {
    const uint64_t n = ++seen_.requests;
    if (expect_.delay.count() > 0) std::this_thread::sleep_for(expect_.delay);  // a slow server
    const std::string& path = expect_.path.empty() ? r.target : expect_.path;
    ++seen_.requests_by_path[r.target];
    const bool path_ok = expect_.path.empty()
                             ? (r.target == "/v1/track" || r.target == "/v1/batch")
                             : r.target == expect_.path;
    const bool well_formed = r.method == "POST" && path_ok &&
                             r.content_type == expect_.content_type &&
                             r.content_encoding == expect_.encoding && r.body_ok &&
                             r.authorization == expect_.authorization;
    seen_.request_ids.clear();
    const int64_t events = CountEvents(parser_, path, r.body, seen_);
    if (events > 0) ++seen_.events_per_request[static_cast<uint64_t>(events)];
    // The request's ids must be id_prefix-s, id_prefix-(s+1), ...
    uint64_t first_seq = 0;
    if (!expect_.id_prefix.empty() && !seen_.request_ids.empty()) {
      const std::string head = expect_.id_prefix + "-";
      bool consecutive = true;
      for (size_t i = 0; i < seen_.request_ids.size(); ++i) {
        const std::string& id = seen_.request_ids[i];
        if (id.rfind(head, 0) != 0) {
          consecutive = false;
          break;
        }
        const uint64_t seq = std::stoull(id.substr(head.size()));
        if (i == 0) first_seq = seq;
        if (seq != first_seq + i || std::to_string(seq) != id.substr(head.size())) {
          consecutive = false;
        }
      }
      if (!consecutive) ++seen_.nonconsecutive_requests;
    }
    if (!well_formed || events < 0) ++seen_.bad_requests;
    seen_.events += static_cast<uint64_t>(std::max<int64_t>(events, 0));
    TestReply reply;
    if (expect_.drop_every > 0 && n % static_cast<uint64_t>(expect_.drop_every) == 0) {
      ++seen_.dropped;
      reply.drop = true;
      return reply;
    }
    if (expect_.close_every > 0 && n % static_cast<uint64_t>(expect_.close_every) == 0) {
      reply.close = true;
    }
    if (expect_.answer_503_every > 0 && n % static_cast<uint64_t>(expect_.answer_503_every) == 0) {
      reply.status = 503;
      reply.body = R"({"success":false,"error":"buffer full"})";
    } else {
      reply.body = expect_.ok_body;
      seen_.events_in_200 += static_cast<uint64_t>(std::max<int64_t>(events, 0));
      if (!expect_.id_prefix.empty() && events > 0) {
        seen_.ranges_200.push_back({first_seq, static_cast<uint64_t>(events)});
      }
    }
    ++seen_.statuses[reply.status];
    return reply;
  }

  Expect expect_;
  Seen seen_;
  simdjson::dom::parser parser_;
  TestHttpServer server_;
};

BenchOptions Options(const std::string& url) {
  BenchOptions o;
  o.url = url;
  o.connections = 4;
  o.threads = 2;
  o.batch = 10;
  o.duration_s = 0.5;
  return o;
}

uint64_t Sum(const std::map<std::string, uint64_t>& m) {
  uint64_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// The report must say exactly what the server saw.
void ExpectReportMatches(const BenchReport& r, const Seen& seen) {
  EXPECT_GT(seen.requests, 10u) << "the run made no progress";
  EXPECT_EQ(seen.bad_requests, 0u);
  EXPECT_EQ(seen.duplicate_ids, 0u);
  EXPECT_EQ(seen.message_ids.size(), seen.events);
  EXPECT_EQ(r.requests_sent, seen.requests);
  EXPECT_EQ(r.requests_answered, seen.requests - seen.dropped);
  EXPECT_EQ(r.status_counts, seen.statuses);
  EXPECT_EQ(r.events_sent, seen.events);
  EXPECT_EQ(r.events_acked, seen.events_in_200);
  EXPECT_EQ(Sum(r.connection_errors), seen.dropped);
  EXPECT_EQ(r.latency.count, r.requests_answered);
  EXPECT_TRUE(r.unique_ids);
}

TEST(LoadGeneratorTest, BatchReportMatchesWhatTheServerSaw) {
  Server server({});
  BenchOptions o = Options(server.Start());
  const auto start = std::chrono::steady_clock::now();
  Result<BenchReport> r = RunBench(o);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  ASSERT_EQ(r->status_counts.size(), 2u);
  EXPECT_EQ(r->status_counts.at(503), seen.requests / 10);
  EXPECT_EQ(r->events_sent, r->requests_sent * 10);
  EXPECT_EQ(r->events_rejected, 0u);
  EXPECT_TRUE(r->connection_errors.empty());
  // Stops at the duration: nothing starts after it, and the tail is one answer long.
  EXPECT_GE(r->elapsed_s, o.duration_s);
  EXPECT_LT(r->elapsed_s, o.duration_s + 0.5);
  EXPECT_LT(wall, o.duration_s + 2.0);
  // Acked JSON bytes are the acked events' bytes.
  EXPECT_NEAR(static_cast<double>(r->acked_json_bytes) / static_cast<double>(r->events_acked),
              r->mean_event_bytes, 0.1 * r->mean_event_bytes);
  EXPECT_GT(r->latency.p50_ms, 0);
  EXPECT_LE(r->latency.p50_ms, r->latency.p99_ms);
  EXPECT_LE(r->latency.p99_ms, r->latency.max_ms + 1e-9);
}

TEST(LoadGeneratorTest, TrackSendsOneTrackEventPerRequest) {
  Expect e;
  e.path = "/v1/track";
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.endpoint = "track";
  o.batch = 50;  // ignored for track
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->batch, 1);
  EXPECT_EQ(r->events_sent, r->requests_sent);
}

TEST(LoadGeneratorTest, EventsEndpointSendsNdjson) {
  Expect e;
  e.path = "/v1/events";
  e.content_type = "application/x-ndjson";
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.endpoint = "events";
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
}

TEST(LoadGeneratorTest, NoopEndpointSendsBatchBodies) {
  Expect e;
  e.path = "/v1/noop";
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.endpoint = "noop";
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
}

// --mix seed --endpoint noop: the seed mix's requests, all to the no-op handler.
TEST(LoadGeneratorTest, SeedMixToTheNoopEndpointSendsTheMixsRequestsThere) {
  Expect e;
  e.path = "/v1/noop";
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.mix = "seed";
  o.endpoint = "noop";
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->method_and_path, "POST /v1/noop + /v1/noop");
  ASSERT_GT(seen.requests, 20u);
  EXPECT_EQ(seen.requests_by_path.size(), 1u);
  EXPECT_EQ(seen.requests_by_path.at("/v1/noop"), seen.requests);
  std::set<size_t> kinds;
  for (const auto& [size, n] : seen.events_per_request) {
    EXPECT_TRUE(size == 1 || (size >= 5 && size <= 20) || (size >= 100 && size <= 500)) << size;
    kinds.insert(size == 1 ? 0 : size <= 20 ? 1 : 2);
  }
  EXPECT_EQ(kinds.size(), 3u);  // singles and both batch sizes
}

TEST(LoadGeneratorTest, GzipBodiesAndWriteKey) {
  Expect e;
  e.encoding = "gzip";
  e.authorization = "Basic azN5Og==";  // base64("k3y:")
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.gzip = true;
  o.write_key = "k3y";
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_TRUE(r->gzip);
  EXPECT_LT(r->body_bytes_sent, r->events_sent * 1024) << "bodies should be compressed";
}

TEST(LoadGeneratorTest, AcceptedCountLimitsAckedEvents) {
  Expect e;
  e.answer_503_every = 0;
  e.ok_body = R"({"success": true, "accepted": 7, "rejected":[{"index":0,"error":"x"}]})";
  Server server(e);
  BenchOptions o = Options(server.Start());
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->requests_sent, seen.requests);
  EXPECT_EQ(r->events_acked, seen.requests * 7);
  EXPECT_EQ(r->events_rejected, seen.requests * 3);
}

TEST(LoadGeneratorTest, SuccessFalseIsNotAcked) {
  Expect e;
  e.answer_503_every = 0;
  e.ok_body = R"({"success":false})";
  Server server(e);
  Result<BenchReport> r = RunBench(Options(server.Start()));
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(seen.requests, 0u);
  EXPECT_EQ(r->events_acked, 0u);
  EXPECT_EQ(r->status_counts.at(200), seen.requests);
}

TEST(LoadGeneratorTest, DroppedAndClosedConnectionsReconnectAndAreCounted) {
  Expect e;
  e.drop_every = 7;
  e.close_every = 5;
  Server server(e);
  Result<BenchReport> r = RunBench(Options(server.Start()));
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_GT(seen.dropped, 0u);
  EXPECT_GT(r->connects, 4u + seen.dropped) << "every drop and close needs a reconnect";
  for (const auto& [message, n] : r->connection_errors) {
    EXPECT_EQ(message.rfind("read: ", 0), 0u) << message;
  }
}

TEST(LoadGeneratorTest, OpenLoopSendsOnScheduleAndCountsEverySlot) {
  Expect e;
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.rate = 2000;  // 200 requests of 10 over 1 s: 4 connections x 50 slots, 20 ms apart
  o.duration_s = 1.0;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_TRUE(r->open_loop);
  EXPECT_EQ(r->requests_sent + r->requests_missed, 200u);
  // 1 in 10 answers is a 503, so fewer than 99% of the events were acked.
  EXPECT_FALSE(r->rate_target_met);
}

TEST(LoadGeneratorTest, OpenLoopMeetsTargetWhenEverythingIsAcked) {
  Expect e;
  e.answer_503_every = 0;
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.rate = 1000;
  o.duration_s = 0.5;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->requests_sent + r->requests_missed, 50u);
  EXPECT_EQ(r->rate_target_met, r->requests_missed == 0);
}

// 16 connections x 100 events at 12,000/s: a send every 8.33… ms over all connections, 60 in
// 0.5 s, the next one due exactly at the end. Rounded down to whole nanoseconds, the interval
// put that one a few ns before the end, where it could only ever be "missed".
TEST(LoadGeneratorTest, OpenLoopSlotOnTheEndIsNotMissedForRounding) {
  Expect e;
  e.answer_503_every = 0;
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.connections = 16;
  o.threads = 1;
  o.batch = 100;
  o.rate = 12000;
  o.duration_s = 0.5;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->requests_sent + r->requests_missed, 60u);
  EXPECT_EQ(r->requests_missed, 0u);
  EXPECT_TRUE(r->rate_target_met);
}

// A server slower than the schedule: latency must count the time requests waited for their
// slot's turn (no coordinated omission), and the missed slots must show.
TEST(LoadGeneratorTest, OpenLoopLatencyRunsFromTheScheduledTime) {
  Expect e;
  e.answer_503_every = 0;
  e.delay = std::chrono::milliseconds(30);
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.connections = 1;
  o.threads = 1;
  o.batch = 1;
  o.rate = 100;  // a slot every 10 ms, each answer takes >= 30 ms
  o.duration_s = 0.6;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->requests_sent + r->requests_missed, 60u);
  EXPECT_GT(r->requests_missed, 20u);
  EXPECT_FALSE(r->rate_target_met);
  // The last requests went out ~2/3 of the run late; measured from the send they'd be ~30 ms.
  EXPECT_GT(r->latency.max_ms, 200);
  EXPECT_GT(r->latency.p50_ms, 100);
}

TEST(LoadGeneratorTest, WarmupIsNotCounted) {
  Server server({});
  BenchOptions o = Options(server.Start());
  o.warmup_s = 0.3;
  o.duration_s = 0.3;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->requests_sent, 0u);
  EXPECT_LT(r->requests_sent, seen.requests);
  EXPECT_LT(r->events_sent, seen.events);
  EXPECT_EQ(seen.duplicate_ids, 0u);
}

// Runs the bench and requests a stop after `seconds`, from another thread (as a signal would);
// *wall_s is how long RunBench took.
Result<BenchReport> RunStoppedAfter(const BenchOptions& options, double seconds, double* wall_s) {
  std::stop_source stop;
  std::jthread stopper([&stop, seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  Result<BenchReport> r = RunBench(options, stop.get_token());
  *wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

TEST(LoadGeneratorTest, StopEndsTheRunEarlyAndReportsWhatWasMeasured) {
  Server server({});
  BenchOptions o = Options(server.Start());
  o.duration_s = 60;
  double wall = 0;
  Result<BenchReport> r = RunStoppedAfter(o, 0.4, &wall);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(wall, 5.0) << "the stop did not end the run";
  ExpectReportMatches(*r, seen);  // every request sent before the stop is in the report
  EXPECT_TRUE(r->stopped_early);
  EXPECT_EQ(r->planned_duration_s, 60);
  EXPECT_GT(r->duration_s, 0.2);  // 0.4 s after RunBench began, less its setup
  EXPECT_LT(r->duration_s, wall);
  EXPECT_GE(r->elapsed_s, r->duration_s);
  EXPECT_LT(r->elapsed_s, r->duration_s + 0.5);
  // Rates are over the time measured, not the time planned.
  EXPECT_NEAR(r->events_per_s, static_cast<double>(r->events_acked) / r->elapsed_s, 1e-6);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const std::string json = FormatReport(*r, ReportFormat::kJson);
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  bool stopped_early = false;
  double planned = 0, measured = 0;
  EXPECT_EQ(doc["stopped_early"].get(stopped_early), simdjson::SUCCESS);
  EXPECT_EQ(doc["planned_duration_s"].get(planned), simdjson::SUCCESS);
  EXPECT_EQ(doc["duration_s"].get(measured), simdjson::SUCCESS);
  EXPECT_TRUE(stopped_early);
  EXPECT_EQ(planned, 60);
  EXPECT_NEAR(measured, r->duration_s, 0.001);
  const std::string text = FormatReport(*r, ReportFormat::kText);
  EXPECT_NE(text.find("early, by a stop request"), std::string::npos) << text;
}

TEST(LoadGeneratorTest, StopInOpenLoopCountsTheSlotsUpToTheStop) {
  Expect e;
  e.answer_503_every = 0;
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.rate = 2000;  // 4 connections, a slot every 20 ms each: 200 requests/s
  o.duration_s = 60;
  double wall = 0;
  Result<BenchReport> r = RunStoppedAfter(o, 0.5, &wall);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(wall, 5.0) << "the stop did not end the run";
  ExpectReportMatches(*r, seen);
  EXPECT_TRUE(r->stopped_early);
  // The slots of the time measured, within one slot per connection.
  EXPECT_NEAR(static_cast<double>(r->requests_sent + r->requests_missed), r->duration_s * 200, 4.0);
  EXPECT_TRUE(r->rate_target_met);
}

// Requests still unanswered when the drain time after a stop is over are cut off and counted.
TEST(LoadGeneratorTest, StopCutsOffAnswersThatTakeLongerThanTheDrainTime) {
  Expect e;
  e.answer_503_every = 0;
  e.delay = std::chrono::milliseconds(1500);  // per request, one at a time
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.connections = 2;
  o.threads = 1;
  o.duration_s = 60;
  o.drain_timeout_s = 0.3;
  double wall = 0;
  Result<BenchReport> r = RunStoppedAfter(o, 0.3, &wall);
  server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(wall, 1.4) << "the run waited for an answer past the drain time";
  EXPECT_TRUE(r->stopped_early);
  EXPECT_EQ(r->requests_sent, 2u);
  EXPECT_EQ(r->requests_answered, 0u);
  EXPECT_EQ(r->events_acked, 0u);
  ASSERT_EQ(r->connection_errors.size(), 1u);
  EXPECT_EQ(r->connection_errors.begin()->first, "no answer within the drain time after a stop");
  EXPECT_EQ(r->connection_errors.begin()->second, 2u);
}

TEST(LoadGeneratorTest, StopDuringTheWarmupMeasuresNothing) {
  Server server({});
  BenchOptions o = Options(server.Start());
  o.warmup_s = 30;
  o.duration_s = 30;
  double wall = 0;
  Result<BenchReport> r = RunStoppedAfter(o, 0.3, &wall);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(wall, 5.0);
  EXPECT_GT(seen.requests, 0u) << "the warmup sent nothing";
  EXPECT_TRUE(r->stopped_early);
  EXPECT_EQ(r->duration_s, 0);
  EXPECT_EQ(r->requests_sent, 0u);
  EXPECT_EQ(r->latency.count, 0u);
  EXPECT_EQ(r->events_per_s, 0);
}

TEST(LoadGeneratorTest, NoServerIsUnavailable) {
  uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  BenchOptions o = Options("http://127.0.0.1:" + std::to_string(port));
  Result<BenchReport> r = RunBench(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("could not connect"), std::string::npos);
}

TEST(LoadGeneratorTest, BadOptionsAreInvalidArguments) {
  auto code = [](const BenchOptions& o) { return RunBench(o).status().code(); };
  BenchOptions o;
  o.endpoint = "nope";
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.connections = 0;
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.batch = 0;
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.duration_s = 0;
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.rate = -1;
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.url = "https://127.0.0.1:8080";
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.url = "127.0.0.1:8080";
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.templates = size_t{1} << 20;  // x 2048 bytes: 2 GiB of templates
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  o = {};
  o.mix = "random";
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  EXPECT_NE(RunBench(o).status().message().find("--mix"), std::string::npos);
  o = {};
  o.id_prefix = "no spaces";
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
  EXPECT_NE(RunBench(o).status().message().find("--id-prefix"), std::string::npos);
  o = {};
  o.raw_xadd_url = "redis://127.0.0.1:1";
  o.mix = "seed";
  o.rate = 1000;  // raw XADD takes the seed mix closed loop only
  EXPECT_EQ(code(o), StatusCode::kInvalidArgument);
}

// --mix seed against a server: the requests follow the mix, every event's id is
// id_prefix-<seq> with the seqs of a request consecutive and the run's seqs 0..n-1 without a
// gap or a repeat, and the acked ranges are exactly the requests the server answered 200.
TEST(LoadGeneratorTest, SeedMixIdsAndAckedRangesMatchWhatTheServerSaw) {
  Expect e;
  e.path = "";
  e.id_prefix = "t-seed.1";
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.mix = "seed";
  o.endpoint = "events";  // ignored by the seed mix
  o.batch = 7;            // likewise
  o.id_prefix = e.id_prefix;
  o.record_acked = true;
  o.duration_s = 1;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectReportMatches(*r, seen);
  EXPECT_EQ(r->mix, "seed");
  EXPECT_EQ(r->id_prefix, "t-seed.1");
  EXPECT_EQ(r->method_and_path, "POST /v1/track + /v1/batch");
  EXPECT_EQ(seen.nonconsecutive_requests, 0u);
  // Request kinds: the report's and the server's agree, and all three occur.
  ASSERT_GT(seen.requests, 100u);
  EXPECT_EQ(r->requests_by_kind.at("track"), seen.requests_by_path.at("/v1/track"));
  EXPECT_EQ(r->requests_by_kind.at("browser_batch") + r->requests_by_kind.at("server_batch"),
            seen.requests_by_path.at("/v1/batch"));
  EXPECT_EQ(seen.requests_by_path.size(), 2u);
  for (const auto& [size, n] : seen.events_per_request) {
    EXPECT_TRUE(size == 1 || (size >= 5 && size <= 20) || (size >= 100 && size <= 500)) << size;
  }
  // Closed loop without warmup: every seq taken was sent, so the ids are prefix-0 .. prefix-(n-1).
  std::set<uint64_t> seqs;
  for (const std::string& id : seen.message_ids) {
    seqs.insert(std::stoull(id.substr(e.id_prefix.size() + 1)));
  }
  ASSERT_EQ(seqs.size(), r->events_sent);
  EXPECT_EQ(*seqs.begin(), 0u);
  EXPECT_EQ(*seqs.rbegin(), r->events_sent - 1);
  // The acked ranges: exactly the 200 answers, no overlap, summing to events_acked.
  std::vector<AckedRange> acked = r->acked, expected = seen.ranges_200;
  auto by_seq = [](const AckedRange& a, const AckedRange& b) { return a.first_seq < b.first_seq; };
  std::sort(acked.begin(), acked.end(), by_seq);
  std::sort(expected.begin(), expected.end(), by_seq);
  EXPECT_EQ(acked, expected);
  uint64_t sum = 0, end = 0;
  for (const AckedRange& a : acked) {
    EXPECT_GE(a.first_seq, end) << "overlapping acked ranges";
    end = a.first_seq + a.count;
    sum += a.count;
  }
  EXPECT_EQ(sum, r->events_acked);
  EXPECT_LT(acked.size(), seen.requests) << "the 503 answers are not acknowledged";
  // The CSV of those ranges.
  const std::string csv = FormatAckedCsv(r->acked);
  EXPECT_EQ(csv.rfind("first_seq,count\n", 0), 0u);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), acked.size() + 1);
  // errors_by_status: the 503s, nothing else.
  ASSERT_EQ(r->errors_by_status.size(), 1u);
  EXPECT_EQ(r->errors_by_status.at("503"), seen.statuses.at(503));
}

// The seed mix in open loop holds the rate in events: the requests due in the measured time
// are those whose first event falls in it, at most one request (500 events) over the target;
// the series adds up to the report.
TEST(LoadGeneratorTest, SeedMixOpenLoopHoldsTheEventRateAndTheSeriesAddsUp) {
  Expect e;
  e.path = "";
  e.answer_503_every = 25;
  Server server(e);
  BenchOptions o = Options(server.Start());
  o.mix = "seed";
  o.rate = 3000;
  o.duration_s = 2;
  o.warmup_s = 0.5;
  o.record_series = true;
  o.record_acked = true;
  Result<BenchReport> r = RunBench(o);
  const Seen& seen = server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->requests_missed, 0u);
  EXPECT_EQ(r->events_missed, 0u);
  EXPECT_GE(r->events_sent, 6000u - 500u);
  EXPECT_LT(r->events_sent, 6000u + 500u);
  EXPECT_EQ(seen.events, seen.message_ids.size());
  EXPECT_GT(seen.events, r->events_sent) << "the warmup's events were sent too";
  // The acked CSV covers the warmup's acknowledged requests as well.
  uint64_t acked_in_csv = 0;
  for (const AckedRange& a : r->acked) acked_in_csv += a.count;
  EXPECT_EQ(acked_in_csv, seen.events_in_200);
  EXPECT_GT(acked_in_csv, r->events_acked);

  ASSERT_EQ(r->series.size(), 2u);
  uint64_t offered = 0, acked = 0, errors = 0;
  for (size_t i = 0; i < r->series.size(); ++i) {
    const SeriesRow& row = r->series[i];
    EXPECT_EQ(row.second, i);
    // Each second offers its share of the rate, give or take a server-side batch.
    EXPECT_GT(row.offered_events, 3000u - 600u) << i;
    EXPECT_LT(row.offered_events, 3000u + 600u) << i;
    EXPECT_GT(row.acked_requests, 0u);
    EXPECT_GT(row.p50_ms, 0);
    EXPECT_LE(row.p50_ms, row.p99_ms);
    offered += row.offered_events;
    acked += row.acked_events;
    errors += row.error_requests;
  }
  EXPECT_EQ(offered, r->events_sent);
  EXPECT_EQ(acked, r->events_acked);
  uint64_t error_requests = 0;
  for (const auto& [status, n] : r->errors_by_status) error_requests += n;
  EXPECT_EQ(errors, error_requests);
  EXPECT_GT(errors, 0u);
}

// Transport failures and client cut-offs are "network" and "timeout" in errors_by_status.
TEST(LoadGeneratorTest, ErrorsByStatusCountsNetworkFailuresAndTimeouts) {
  {
    Expect e;
    e.drop_every = 7;
    e.answer_503_every = 0;
    Server server(e);
    Result<BenchReport> r = RunBench(Options(server.Start()));
    const Seen& seen = server.Stop();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_GT(seen.dropped, 0u);
    ASSERT_EQ(r->errors_by_status.size(), 1u) << FormatReport(*r, ReportFormat::kText);
    EXPECT_EQ(r->errors_by_status.at("network"), seen.dropped);
  }
  {
    Expect e;
    e.answer_503_every = 0;
    e.delay = std::chrono::milliseconds(1500);
    Server server(e);
    BenchOptions o = Options(server.Start());
    o.connections = 2;
    o.threads = 1;
    o.duration_s = 0.2;
    o.drain_timeout_s = 0.2;  // the answers take longer: cut by the client
    Result<BenchReport> r = RunBench(o);
    server.Stop();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->errors_by_status.size(), 1u) << FormatReport(*r, ReportFormat::kText);
    EXPECT_EQ(r->errors_by_status.at("timeout"), 2u);
  }
}

TEST(LoadGeneratorTest, JsonAndTextReports) {
  Server server({});
  BenchOptions o = Options(server.Start());
  o.id_prefix = "rep0rt";
  Result<BenchReport> r = RunBench(o);
  server.Stop();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string json = FormatReport(*r, ReportFormat::kJson);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  double events_per_s = 0, p50 = 0, p99 = 0, p999 = 0;
  EXPECT_EQ(doc["events_per_s"].get(events_per_s), simdjson::SUCCESS);
  EXPECT_EQ(doc["p50_ms"].get(p50), simdjson::SUCCESS);
  EXPECT_EQ(doc["p99_ms"].get(p99), simdjson::SUCCESS);
  EXPECT_EQ(doc["p999_ms"].get(p999), simdjson::SUCCESS);
  EXPECT_NEAR(events_per_s, r->events_per_s, 0.01);
  uint64_t errors_503 = 0;
  EXPECT_EQ(doc.at_pointer("/errors/503").get(errors_503), simdjson::SUCCESS);
  EXPECT_EQ(errors_503, r->status_counts.at(503));
  EXPECT_EQ(doc.at_pointer("/errors/200").error(), simdjson::NO_SUCH_FIELD);
  uint64_t by_status_503 = 0, batch_requests = 0, offered = 0, acked = 0;
  EXPECT_EQ(doc.at_pointer("/errors_by_status/503").get(by_status_503), simdjson::SUCCESS);
  EXPECT_EQ(by_status_503, r->status_counts.at(503));
  EXPECT_GT(by_status_503, 0u);
  EXPECT_EQ(doc.at_pointer("/errors_by_status/200").error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(doc.at_pointer("/requests_by_kind/batch").get(batch_requests), simdjson::SUCCESS);
  EXPECT_EQ(batch_requests, r->requests_sent);
  EXPECT_EQ(doc["events_offered"].get(offered), simdjson::SUCCESS);
  EXPECT_EQ(offered, r->events_sent);
  EXPECT_EQ(doc["events_acked"].get(acked), simdjson::SUCCESS);
  EXPECT_EQ(acked, r->events_acked);
  double lat_p50 = 0, lat_p99 = 0, lat_p999 = 0;
  EXPECT_EQ(doc.at_pointer("/latency_ms/p50").get(lat_p50), simdjson::SUCCESS);
  EXPECT_EQ(doc.at_pointer("/latency_ms/p99").get(lat_p99), simdjson::SUCCESS);
  EXPECT_EQ(doc.at_pointer("/latency_ms/p999").get(lat_p999), simdjson::SUCCESS);
  EXPECT_NEAR(lat_p999, r->latency.p999_ms, 0.001);
  EXPECT_GT(lat_p999, 0);
  EXPECT_LE(lat_p50, lat_p99);
  EXPECT_LE(lat_p99, lat_p999);
  std::string_view prefix, mix;
  EXPECT_EQ(doc["id_prefix"].get(prefix), simdjson::SUCCESS);
  EXPECT_EQ(prefix, "rep0rt");
  EXPECT_EQ(doc["mix"].get(mix), simdjson::SUCCESS);
  EXPECT_EQ(mix, "fixed");
  bool unique = false;
  EXPECT_EQ(doc["unique_ids"].get(unique), simdjson::SUCCESS);
  EXPECT_TRUE(unique);
  EXPECT_TRUE(doc["rate_target_met"].is_null());

  const std::string text = FormatReport(*r, ReportFormat::kText);
  EXPECT_NE(text.find("messageIds unique"), std::string::npos) << text;
  EXPECT_NE(text.find("503 x"), std::string::npos) << text;
  EXPECT_NE(text.find("p99.9"), std::string::npos) << text;
  EXPECT_NE(text.find("rep0rt-<seq>"), std::string::npos) << text;
  EXPECT_NE(text.find("not 200     503 x"), std::string::npos) << text;
  EXPECT_NE(text.find("by kind     batch x"), std::string::npos) << text;

  EXPECT_TRUE(ParseReportFormat("json").ok());
  EXPECT_FALSE(ParseReportFormat("yaml").ok());
}

}  // namespace
}  // namespace sluice::bench
