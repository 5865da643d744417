// End-to-end ingest through the real binary: every endpoint shape, gzip, auth, limits, the
// full buffer, metrics, graceful shutdown, and what ends up in the durable log.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "http/compression.h"
#include "http/test_client.h"
#include "log_reader.h"
#include "sluice_process.h"

namespace sluice::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;
const Headers kJson = {{"Content-Type", "application/json"}};

std::string Track(const std::string& id, const std::string& user = "u1") {
  return R"({"type":"track","messageId":")" + id + R"(","userId":")" + user +
         R"(","event":"Product Viewed","properties":{"sku":"A-1","price":9.5},)"
         R"("timestamp":"2024-05-01T12:00:00.000Z"})";
}

TEST(IngestIntegration, EveryEndpointShapeLandsInTheLog) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  auto proc = SluiceProcess::StartBufferOnly(data);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());

  auto r = c.Post("/v1/track", R"({"messageId":"single-1","userId":"u1","event":"Signed Up"})", kJson);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, R"({"success":true,"accepted":1})");

  r = c.Post("/v1/identify", R"({"messageId":"ident-1","userId":"u1","traits":{"plan":"pro"}})", kJson);
  EXPECT_EQ(r->status, 200) << r->body;
  r = c.Post("/v1/page", R"({"messageId":"page-1","anonymousId":"a1","name":"Home"})", kJson);
  EXPECT_EQ(r->status, 200) << r->body;

  // A batch with one invalid event (track without "event"): the others are kept.
  std::string batch = R"({"batch":[)" + Track("batch-1") + R"(,{"type":"track","userId":"u2"},)" +
                      Track("batch-3") + R"(],"sentAt":"2024-05-01T12:00:01.000Z"})";
  r = c.Post("/v1/batch", batch, kJson);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find(R"("accepted":2)"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("rejected":[{"index":1,"error":)"), std::string::npos) << r->body;

  // NDJSON and a JSON array on /v1/events.
  r = c.Post("/v1/events", Track("nd-1") + "\n" + Track("nd-2") + "\n", {});
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find(R"("accepted":2)"), std::string::npos);
  r = c.Post("/v1/events", "[" + Track("arr-1") + "," + Track("arr-2") + "]", kJson);
  EXPECT_EQ(r->status, 200) << r->body;

  // gzip.
  std::string gz = http::GzipCompress(R"({"batch":[)" + Track("gz-1") + "," + Track("gz-2") + "]}");
  r = c.Post("/v1/batch", gz, {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(r->status, 200) << r->body;

  // Not JSON: 400, and the body is quarantined.
  r = c.Post("/v1/track", "this is not json", kJson);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("not valid JSON"), std::string::npos) << r->body;
  // No valid event at all: 400 with the reasons.
  r = c.Post("/v1/track", R"({"event":"x"})", kJson);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("userId"), std::string::npos) << r->body;

  ASSERT_EQ((*proc)->Terminate(), 0) << (*proc)->Log();

  LogContents log = ReadLog(data);
  std::map<std::string, int> ids;
  for (const auto& e : log.events) ids[e.event_id]++;
  for (const char* id : {"single-1", "ident-1", "page-1", "batch-1", "batch-3", "nd-1", "nd-2",
                         "arr-1", "arr-2", "gz-1", "gz-2"}) {
    EXPECT_EQ(ids[id], 1) << id;
  }
  EXPECT_EQ(log.events.size(), 11u);
  ASSERT_EQ(log.rejections.size(), 3u);
  EXPECT_NE(log.rejections[1].body.find("this is not json"), std::string::npos);
  for (const auto& e : log.events) {
    if (e.event_id == "batch-1") {
      EXPECT_EQ(e.type, "track");
      EXPECT_EQ(e.event, "Product Viewed");
      EXPECT_EQ(e.user_id, "u1");
      EXPECT_NE(e.properties.find("\"sku\":\"A-1\""), std::string::npos) << e.properties;
      ASSERT_TRUE(e.sent_at_us.has_value());
    }
  }
}

TEST(IngestIntegration, WriteKeysByBasicBearerAndBody) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  auto proc = SluiceProcess::StartBufferOnly(
      data, {"--write-key", "web:web-secret-123", "--read-key", "bi:read-secret-123"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  std::string body = R"({"messageId":"k1","userId":"u1","event":"E"})";

  EXPECT_EQ(c.Post("/v1/track", body, kJson)->status, 401);
  EXPECT_EQ(c.Post("/v1/track", body, {{"Authorization", "Bearer wrong-secret-1"}})->status, 401);
  EXPECT_EQ(c.Post("/v1/track", body, {{"Authorization", "Bearer read-secret-123"}})->status, 401);
  // base64("web-secret-123:")
  EXPECT_EQ(c.Post("/v1/track", body, {{"Authorization", "Basic d2ViLXNlY3JldC0xMjM6"}})->status,
            200);
  EXPECT_EQ(c.Post("/v1/track", R"({"messageId":"k2","userId":"u1","event":"E"})",
                   {{"Authorization", "Bearer web-secret-123"}})
                ->status,
            200);
  EXPECT_EQ(c.Post("/v1/track",
                   R"({"writeKey":"web-secret-123","messageId":"k3","userId":"u1","event":"E"})",
                   kJson)
                ->status,
            200);
  ASSERT_EQ((*proc)->Terminate(), 0);
  LogContents log = ReadLog(data);
  ASSERT_EQ(log.events.size(), 3u);
  for (const auto& e : log.events) EXPECT_EQ(e.source, "web");
}

TEST(IngestIntegration, KeysAndLimitsFromEnvironmentAndConfigFile) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string body = R"({"userId":"u1","event":"E"})";

  // From the environment alone: a comma-separated list.
  ::setenv("SLUICE_WRITE_KEY", "env1:env-secret-111,env2:env-secret-222", 1);
  ::setenv("SLUICE_MAX_EVENT_BYTES", "1KiB", 1);
  auto proc = SluiceProcess::StartBufferOnly(data);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  {
    http::TestClient c((*proc)->address());
    EXPECT_EQ(c.Post("/v1/track", body, {{"Authorization", "Bearer env-secret-111"}})->status, 200);
    EXPECT_EQ(c.Post("/v1/track", body, {{"Authorization", "Bearer env-secret-222"}})->status, 200);
    EXPECT_EQ(c.Post("/v1/track", body)->status, 401);
    auto big = c.Post("/v1/track",
                      R"({"userId":"u1","event":"E","properties":{"p":")" +
                          std::string(2000, 'x') + R"("}})",
                      {{"Authorization", "Bearer env-secret-111"}});
    EXPECT_EQ(big->status, 400);
    EXPECT_NE(big->body.find("over max_event_bytes (1024)"), std::string::npos) << big->body;
  }
  ASSERT_EQ((*proc)->Terminate(), 0);

  // With a config file too, the environment still wins for the same key; the file fills what
  // the environment leaves out.
  std::string config = dir.path() + "/sluice.toml";
  {
    std::ofstream f(config);
    f << "# sluice serve configuration\n"
         "write-key = [\"cfg:cfg-secret-123\"]\n"
         "max-batch-events = 2\n"
         "noop-route = true\n";
  }
  auto again = SluiceProcess::StartBufferOnly(data, {"--config", config});
  ::unsetenv("SLUICE_WRITE_KEY");
  ::unsetenv("SLUICE_MAX_EVENT_BYTES");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  {
    http::TestClient c2((*again)->address());
    EXPECT_EQ(c2.Post("/v1/track", body, {{"Authorization", "Bearer env-secret-111"}})->status,
              200);
    EXPECT_EQ(c2.Post("/v1/track", body, {{"Authorization", "Bearer cfg-secret-123"}})->status,
              401);
    std::string three = R"({"batch":[)" + Track("b1") + "," + Track("b2") + "," + Track("b3") + "]}";
    auto r = c2.Post("/v1/batch", three, {{"Authorization", "Bearer env-secret-111"}});
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("over max_batch_events (2)"), std::string::npos) << r->body;
    EXPECT_EQ(c2.Post("/v1/noop", "{}")->status, 200);
  }
  ASSERT_EQ((*again)->Terminate(), 0);

  // Without the environment, the file's key is the one.
  auto file_only = SluiceProcess::StartBufferOnly(data, {"--config", config});
  ASSERT_TRUE(file_only.ok()) << file_only.status().ToString();
  {
    http::TestClient c4((*file_only)->address());
    EXPECT_EQ(c4.Post("/v1/track", body, {{"Authorization", "Bearer cfg-secret-123"}})->status,
              200);
    EXPECT_EQ(c4.Post("/v1/track", body, {{"Authorization", "Bearer env-secret-111"}})->status,
              401);
  }
  ASSERT_EQ((*file_only)->Terminate(), 0);

  // And a flag wins over both.
  auto third = SluiceProcess::StartBufferOnly(data, {"--config", config, "--write-key", "flag:flag-secret-1"});
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  http::TestClient c3((*third)->address());
  EXPECT_EQ(c3.Post("/v1/track", body, {{"Authorization", "Bearer flag-secret-1"}})->status, 200);
  EXPECT_EQ(c3.Post("/v1/track", body, {{"Authorization", "Bearer cfg-secret-123"}})->status, 401);
}

TEST(IngestIntegration, BadConfigFileStopsStartWithASentence) {
  TempDir dir;
  std::string config = dir.path() + "/bad.toml";
  std::string out;
  {
    std::ofstream f(config);
    f << "listen = \"127.0.0.1:0\"\nlisten-port = 9\n";
  }
  EXPECT_EQ(SluiceProcess::RunToCompletion({"serve", "--config", config}, &out), 2);
  EXPECT_NE(out.find("unknown key \"listen-port\""), std::string::npos) << out;
  {
    std::ofstream f(config);
    f << "listen = [unclosed\n";
  }
  EXPECT_EQ(SluiceProcess::RunToCompletion({"serve", "--config", config}, &out), 2);
  EXPECT_NE(out.find("line 1"), std::string::npos) << out;
}

TEST(IngestIntegration, RefusesToListenPubliclyWithoutKeys) {
  TempDir dir;
  std::string out;
  int rc = SluiceProcess::RunToCompletion(
      {"serve", "--listen", "0.0.0.0:0", "--data-dir", dir.path() + "/d"}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("refusing to listen on 0.0.0.0:0 with no write keys"), std::string::npos)
      << out;
  rc = SluiceProcess::RunToCompletion(
      {"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.path() + "/d", "--max-body-bytes",
       "lots"},
      &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--max-body-bytes"), std::string::npos) << out;
}

TEST(IngestIntegration, SecondServerOnSameDataDirIsRefused) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  auto proc = SluiceProcess::StartBufferOnly(data);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  std::string out;
  int rc = SluiceProcess::RunToCompletion(
      {"serve", "--listen", "127.0.0.1:0", "--data-dir", data}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("in use by another sluice process"), std::string::npos) << out;
}

TEST(IngestIntegration, FullBufferAnswers503AndKeepsWhatItAcknowledged) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  auto proc = SluiceProcess::StartBufferOnly(
      data, {"--buffer-max-bytes", "64KiB", "--buffer-segment-bytes", "16KiB"});
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  int acked = 0;
  int full = 0;
  std::string retry_after;
  const std::string pad(1000, 'p');
  for (int i = 0; i < 2000 && full == 0; ++i) {
    auto r = c.Post("/v1/track",
                    R"({"messageId":"f-)" + std::to_string(i) +
                        R"(","userId":"u","event":"E","properties":{"pad":")" + pad + R"("}})",
                    kJson);
    ASSERT_TRUE(r.ok());
    if (r->status == 200) {
      acked++;
    } else {
      ASSERT_EQ(r->status, 503) << r->body;
      EXPECT_NE(r->body.find("buffer is full"), std::string::npos) << r->body;
      retry_after = r->Header("retry-after");
      full++;
    }
  }
  EXPECT_EQ(full, 1);
  EXPECT_GT(acked, 40);  // 64 KiB of ~1 KB events
  EXPECT_EQ(retry_after, "1");
  auto ready = c.Get("/readyz");
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("buffer is full"), std::string::npos);
  ASSERT_EQ((*proc)->Terminate(), 0);
  EXPECT_EQ(ReadLog(data).events.size(), static_cast<size_t>(acked));
}

TEST(IngestIntegration, MetricsCountWhatHappened) {
  TempDir dir;
  auto proc = SluiceProcess::StartBufferOnly(dir.path() + "/data");
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  http::TestClient c((*proc)->address());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(c.Post("/v1/track", Track("m-" + std::to_string(i)), kJson)->status, 200);
  }
  ASSERT_EQ(c.Post("/v1/track", R"({"userId":"u"})", kJson)->status, 400);
  auto m = c.Get("/metrics");
  ASSERT_EQ(m->status, 200);
  const std::string& t = m->body;
  EXPECT_NE(t.find("sluice_events_accepted_total 5"), std::string::npos) << t;
  EXPECT_NE(t.find("sluice_http_requests_total{route=\"/v1/track\",status=\"200\"} 5"),
            std::string::npos) << t;
  EXPECT_NE(t.find("sluice_http_requests_total{route=\"/v1/track\",status=\"400\"} 1"),
            std::string::npos) << t;
  EXPECT_NE(t.find("sluice_buffer_depth_events{shard=\"disk\"} 6"), std::string::npos) << t;  // 5 + quarantine
  EXPECT_NE(t.find("sluice_buffer_fsync_seconds_count"), std::string::npos) << t;
  EXPECT_NE(t.find("sluice_events_rejected_total{reason="), std::string::npos) << t;
  EXPECT_NE(t.find("sluice_http_request_duration_seconds_bucket{route=\"/v1/track\",le="),
            std::string::npos) << t;
}

}  // namespace
}  // namespace sluice::testing
