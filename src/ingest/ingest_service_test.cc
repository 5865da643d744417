#include "ingest/ingest_service.h"

#include <gtest/gtest.h>

#include <mutex>

#include "http/test_client.h"

namespace sluice::ingest {
namespace {

// A Buffer fake that records appends and answers with a chosen status.
class FakeBuffer : public buffer::Buffer {
 public:
  void Append(std::vector<std::string> records, buffer::AppendCallback done) override {
    Status st;
    {
      std::lock_guard lock(mu_);
      st = next_;
      if (st.ok()) {
        for (auto& r : records) stored_.push_back(std::move(r));
      }
    }
    done(st);
  }
  Result<std::vector<buffer::Record>> Read(uint64_t, size_t, size_t,
                                           std::chrono::milliseconds) override {
    return std::vector<buffer::Record>{};
  }
  Status Commit(uint64_t) override { return Status::OK(); }
  buffer::BufferStats Stats() const override { return {}; }
  void Close() override {}

  void FailWith(Status st) {
    std::lock_guard lock(mu_);
    next_ = std::move(st);
  }
  std::vector<event::Record> Stored() {
    std::lock_guard lock(mu_);
    std::vector<event::Record> out;
    for (const auto& s : stored_) out.push_back(*event::DecodeRecord(s));
    return out;
  }

 private:
  std::mutex mu_;
  Status next_;
  std::vector<std::string> stored_;
};

class IngestServiceTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> write_keys = {}, double rate = 0) {
    for (const auto& k : write_keys) ASSERT_TRUE(keys_.Add(k, http::Role::kWrite).ok());
    limiter_ = std::make_unique<http::RateLimiter>(rate, rate, &clock_);
    IngestOptions opts;
    opts.noop_route = true;
    service_ = std::make_unique<IngestService>(opts, &router_, &keys_, limiter_.get(), &clock_);
    http::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.threads = 1;
    server_ = std::make_unique<http::Server>(so);
    service_->RegisterRoutes(server_.get());
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<http::TestClient>(server_->LocalAddress());
  }
  http::ClientResponse Post(const std::string& path, const std::string& body,
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto r = client_->Post(path, body, headers);
    SLUICE_CHECK(r.ok());
    return *r;
  }

  ManualClock clock_;
  FakeBuffer buffer_;
  buffer::ShardRouter router_{{&buffer_}};
  http::KeyStore keys_;
  std::unique_ptr<http::RateLimiter> limiter_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::TestClient> client_;
};

TEST_F(IngestServiceTest, AcceptsAndStoresEventsWithReceivedAt) {
  Start();
  auto r = Post("/v1/track", R"({"userId":"u1","event":"Signed Up","messageId":"m1"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"success":true,"accepted":1})");
  auto stored = buffer_.Stored();
  ASSERT_EQ(stored.size(), 1u);
  const auto& e = std::get<event::Event>(stored[0]);
  EXPECT_EQ(e.event_id, "m1");
  EXPECT_EQ(e.type, "track");
  EXPECT_EQ(e.event, "Signed Up");
  EXPECT_GT(e.received_at_us, 0);
}

TEST_F(IngestServiceTest, MixedBatchKeepsValidAndQuarantinesInvalid) {
  Start();
  auto r = Post("/v1/batch",
                R"({"batch":[{"type":"track","userId":"u","event":"A","messageId":"a"},)"
                R"({"type":"track","userId":"u"},)"
                R"({"type":"identify","anonymousId":"x","messageId":"c"}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("accepted":2,"rejected":[{"index":1,"error":")"), std::string::npos)
      << r.body;
  auto stored = buffer_.Stored();
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(std::get<event::Event>(stored[0]).event_id, "a");
  EXPECT_EQ(std::get<event::Event>(stored[1]).event_id, "c");
  const auto& q = std::get<event::Rejection>(stored[2]);
  EXPECT_NE(q.error.find("event"), std::string::npos);
  EXPECT_NE(q.body.find("\"userId\":\"u\""), std::string::npos) << q.body;
}

TEST_F(IngestServiceTest, NoValidEventIs400AndStillQuarantined) {
  Start();
  auto r = Post("/v1/track", R"({"event":"A"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"("success":false)"), std::string::npos);
  EXPECT_NE(r.body.find(R"("rejected":[{"index":0)"), std::string::npos) << r.body;
  auto bad = Post("/v1/batch", "{not json");
  EXPECT_EQ(bad.status, 400);
  auto stored = buffer_.Stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(std::get<event::Rejection>(stored[1]).body, "{not json");
}

TEST_F(IngestServiceTest, RemembersTheLatestRejectionsNewestFirst) {
  Start();
  EXPECT_TRUE(service_->RecentRejections().empty());
  EXPECT_EQ(Post("/v1/batch", "{not json").status, 400);
  EXPECT_EQ(Post("/v1/batch", R"({"batch":[{"type":"track","userId":"u1","event":"A"},
                                          {"type":"track","event":"B"}]})")
                .status,
            200);
  auto recent = service_->RecentRejections();
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].reason, "missing_user");
  EXPECT_NE(recent[0].error.find("userId"), std::string::npos) << recent[0].error;
  EXPECT_EQ(recent[1].reason, "bad_body");
  for (size_t i = 0; i < IngestService::kRecentRejections + 5; ++i) {
    Post("/v1/track", R"({"event":"no user"})");
  }
  recent = service_->RecentRejections();
  ASSERT_EQ(recent.size(), IngestService::kRecentRejections);
  EXPECT_EQ(recent.back().reason, "missing_user");  // the older ones fell off
}

TEST_F(IngestServiceTest, FullOrFailingBufferIs503WithRetryAfter) {
  Start();
  buffer_.FailWith(Status::ResourceExhausted("cap"));
  auto r = Post("/v1/track", R"({"userId":"u1","event":"E"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("retry-after"), "1");
  EXPECT_NE(r.body.find("buffer is full"), std::string::npos);
  buffer_.FailWith(Status::IOError("fsync: Input/output error"));
  r = Post("/v1/track", R"({"userId":"u1","event":"E"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("fsync: Input/output error"), std::string::npos);
  EXPECT_TRUE(buffer_.Stored().empty());
}

TEST_F(IngestServiceTest, WriteKeysAndSource) {
  Start({"web:web-secret-1", "srv:srv-secret-1"});
  std::string body = R"({"userId":"u1","event":"E"})";
  auto r = Post("/v1/track", body);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("missing write key"), std::string::npos);
  EXPECT_EQ(Post("/v1/track", body, {{"Authorization", "Bearer nope-nope-1"}}).status, 401);
  EXPECT_EQ(Post("/v1/track", body, {{"Authorization", "Bearer srv-secret-1"}}).status, 200);
  EXPECT_EQ(Post("/v1/track", R"({"writeKey":"web-secret-1","userId":"u1","event":"E"})").status,
            200);
  auto stored = buffer_.Stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(std::get<event::Event>(stored[0]).source, "srv");
  EXPECT_EQ(std::get<event::Event>(stored[1]).source, "web");
  // Unauthenticated garbage is refused without being quarantined.
  EXPECT_EQ(Post("/v1/track", "garbage").status, 400);
  EXPECT_EQ(buffer_.Stored().size(), 2u);
}

TEST_F(IngestServiceTest, RateLimitIs429WithRetryAfterAndStoresNothing) {
  Start({"web:web-secret-1"}, /*rate=*/10);
  std::string batch = R"({"batch":[)";
  for (int i = 0; i < 10; ++i) batch += std::string(i ? "," : "") + R"({"type":"track","userId":"u","event":"E"})";
  batch += "]}";
  std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer web-secret-1"}};
  EXPECT_EQ(Post("/v1/batch", batch, auth).status, 200);
  auto r = Post("/v1/batch", batch, auth);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("retry-after"), "1");
  EXPECT_EQ(buffer_.Stored().size(), 10u);
  clock_.Advance(1'000'000);
  EXPECT_EQ(Post("/v1/batch", batch, auth).status, 200);
}

TEST_F(IngestServiceTest, NoopRouteStoresNothing) {
  Start();
  EXPECT_EQ(Post("/v1/noop", R"({"batch":[]})").status, 200);
  EXPECT_TRUE(buffer_.Stored().empty());
}

}  // namespace
}  // namespace sluice::ingest
