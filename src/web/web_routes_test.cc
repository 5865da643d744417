#include "web/web_routes.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <memory>
#include <string>

#include "http/test_client.h"

namespace sluice::web {
namespace {

const Asset kTestAssets[] = {
    {"/", "<!doctype html><script src=\"/assets/app-ABC.js\"></script>", "\"1111111111111111\""},
    {"/assets/app-ABC.js", "console.log('sluice')", "\"2222222222222222\""},
    {"/assets/app-ABC.css", "body{}", "\"3333333333333333\""},
};

class WebRoutesTest : public ::testing::Test {
 protected:
  // With `with_keys`: read key read-secret-1 and write key write-secret-1.
  void Start(bool with_keys = false) {
    if (with_keys) {
      ASSERT_TRUE(keys_.Add("analyst:read-secret-1", http::Role::kRead).ok());
      ASSERT_TRUE(keys_.Add("web:write-secret-1", http::Role::kWrite).ok());
    }
    http::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.threads = 1;
    server_ = std::make_unique<http::Server>(so);
    RegisterRoutes(server_.get(), &keys_, &live_, kTestAssets);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<http::TestClient>(server_->LocalAddress());
  }
  http::ClientResponse Get(const std::string& target,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto r = client_->Send("GET", target, "", headers);
    SLUICE_CHECK(r.ok());
    return *r;
  }

  metrics::Registry registry_;
  ManualClock clock_;
  LiveSampler live_{{}, LiveSources{&registry_, {}, nullptr, nullptr}, &clock_};
  http::KeyStore keys_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::TestClient> client_;
};

TEST_F(WebRoutesTest, ServesThePageAndAssetsWithTypesAndCaching) {
  Start();
  auto page = Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, kTestAssets[0].body);
  EXPECT_EQ(page.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.Header("cache-control"), "no-cache");
  EXPECT_EQ(page.Header("etag"), "\"1111111111111111\"");
  EXPECT_NE(page.Header("content-security-policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page.Header("x-content-type-options"), "nosniff");

  auto js = Get("/assets/app-ABC.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log('sluice')");
  EXPECT_EQ(js.Header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.Header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(Get("/assets/app-ABC.css").Header("content-type"), "text/css; charset=utf-8");

  EXPECT_EQ(Get("/assets/nope.js").status, 404);
  EXPECT_EQ(Get("/index.html").status, 404);
}

TEST_F(WebRoutesTest, IfNoneMatchGives304) {
  Start();
  auto r = Get("/", {{"If-None-Match", "\"1111111111111111\""}});
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(Get("/", {{"If-None-Match", "\"0000\", W/\"1111111111111111\""}}).status, 304);
  EXPECT_EQ(Get("/", {{"If-None-Match", "\"0000000000000000\""}}).status, 200);
  EXPECT_EQ(Get("/assets/app-ABC.js", {{"If-None-Match", "*"}}).status, 304);
}

TEST_F(WebRoutesTest, LiveAnswersJsonAndRefusesABadSince) {
  Start();
  live_.SampleNow();
  auto r = Get("/v1/live");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("cache-control"), "no-store");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  EXPECT_EQ(doc["interval_ms"].get_int64().value(), 1000);
  EXPECT_EQ(Get("/v1/live?since=1714564800.5").status, 200);
  auto bad = Get("/v1/live?since=yesterday");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("since=yesterday is not a number"), std::string::npos) << bad.body;
}

TEST_F(WebRoutesTest, LiveNeedsAReadKeyOnceKeysExistButThePageDoesNot) {
  Start(/*with_keys=*/true);
  EXPECT_EQ(Get("/").status, 200);
  EXPECT_EQ(Get("/assets/app-ABC.js").status, 200);
  EXPECT_EQ(Get("/v1/live").status, 401);
  EXPECT_EQ(Get("/v1/live", {{"Authorization", "Bearer write-secret-1"}}).status, 403);
  EXPECT_EQ(Get("/v1/live", {{"Authorization", "Bearer read-secret-1"}}).status, 200);
}

TEST(ContentType, ByExtension) {
  EXPECT_EQ(ContentTypeFor("/"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("/assets/a.svg"), "image/svg+xml");
  EXPECT_EQ(ContentTypeFor("/assets/a.png"), "image/png");
  EXPECT_EQ(ContentTypeFor("/assets/a.bin"), "application/octet-stream");
}

TEST(EmbeddedAssets, HoldThePageAndTheFilesItNames) {
  // The real bundle, as compiled in: index.html at "/" naming its hashed JS and CSS, each
  // of which is embedded too.
  std::span<const Asset> assets = EmbeddedAssets();
  ASSERT_GE(assets.size(), 3u);
  EXPECT_EQ(assets[0].path, "/");
  const std::string page(assets[0].body);
  EXPECT_NE(page.find("<title>Sluice</title>"), std::string::npos) << page;
  size_t scripts = 0, styles = 0;
  for (const Asset& a : assets.subspan(1)) {
    EXPECT_TRUE(a.path.starts_with("/assets/")) << a.path;
    EXPECT_NE(page.find(std::string(a.path)), std::string::npos) << a.path << " not in the page";
    EXPECT_FALSE(a.body.empty()) << a.path;
    EXPECT_EQ(a.etag.size(), 18u);
    scripts += a.path.ends_with(".js");
    styles += a.path.ends_with(".css");
  }
  EXPECT_EQ(scripts, 1u);
  EXPECT_EQ(styles, 1u);
}

}  // namespace
}  // namespace sluice::web
