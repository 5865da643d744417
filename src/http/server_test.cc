#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <thread>

#include "http/compression.h"

namespace sluice::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions opts = {}) {
    opts.listen = "127.0.0.1:0";
    opts.threads = 2;
    server_ = std::make_unique<Server>(opts);
    server_->Route("POST", "/echo", [](Request& req, Responder done) {
      Response r;
      r.body = req.body;
      r.content_type = "text/plain";
      done(std::move(r));
    });
    server_->Route("GET", "/q", [](Request& req, Responder done) {
      done(Response::Json(200, req.QueryParam("a").value_or("<none>")));
    });
    server_->Route("POST", "/slow", [this](Request&, Responder done) {
      // Answer later, from another thread, like the buffer's fsync thread does.
      slow_started_.set_value();
      std::thread([done] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        done(Response::Json(200, "{\"late\":true}"));
      }).detach();
    });
    ASSERT_TRUE(server_->Start().ok());
    std::string addr = server_->LocalAddress();
    port_ = addr.substr(addr.rfind(':') + 1);
  }

  void Connect(beast::tcp_stream& s) {
    tcp::resolver r(ioc_);
    s.connect(r.resolve("127.0.0.1", port_));
  }

  bhttp::response<bhttp::string_body> Send(beast::tcp_stream& s,
                                           bhttp::request<bhttp::string_body> req) {
    req.set(bhttp::field::host, "127.0.0.1");
    req.prepare_payload();
    bhttp::write(s, req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buf, res);
    return res;
  }

  bhttp::response<bhttp::string_body> Post(const std::string& target, std::string body) {
    beast::tcp_stream s(ioc_);
    Connect(s);
    bhttp::request<bhttp::string_body> req(bhttp::verb::post, target, 11);
    req.body() = std::move(body);
    return Send(s, std::move(req));
  }

  net::io_context ioc_;
  std::unique_ptr<Server> server_;
  std::string port_;
  std::promise<void> slow_started_;
};

TEST_F(ServerTest, RoutesAndKeepAlive) {
  StartServer();
  beast::tcp_stream s(ioc_);
  Connect(s);
  for (int i = 0; i < 3; ++i) {  // three requests on one connection
    bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/echo", 11);
    req.body() = "hello " + std::to_string(i);
    auto res = Send(s, std::move(req));
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "hello " + std::to_string(i));
    EXPECT_TRUE(res.keep_alive());
  }
  auto q = Send(s, bhttp::request<bhttp::string_body>(bhttp::verb::get, "/q?b=1&a=x%20y+z", 11));
  EXPECT_EQ(q.body(), "x y z");
}

TEST_F(ServerTest, UnknownPathAndWrongMethodAreJsonErrors) {
  StartServer();
  auto res = Post("/nope", "");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("no such endpoint: /nope"), std::string::npos);
  beast::tcp_stream s(ioc_);
  Connect(s);
  auto r2 = Send(s, bhttp::request<bhttp::string_body>(bhttp::verb::get, "/echo", 11));
  EXPECT_EQ(r2.result_int(), 405);
  EXPECT_EQ(r2[bhttp::field::allow], "POST");
}

TEST_F(ServerTest, BodyOverLimitGets413) {
  ServerOptions opts;
  opts.max_body_bytes = 1000;
  StartServer(opts);
  EXPECT_EQ(Post("/echo", std::string(1000, 'a')).result_int(), 200);
  auto res = Post("/echo", std::string(1001, 'a'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_NE(res.body().find("max_body_bytes"), std::string::npos);
}

TEST_F(ServerTest, HeaderOverLimitGets431) {
  ServerOptions opts;
  opts.max_header_bytes = 1024;
  StartServer(opts);
  beast::tcp_stream s(ioc_);
  Connect(s);
  bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/echo", 11);
  req.set("X-Big", std::string(2000, 'h'));
  EXPECT_EQ(Send(s, std::move(req)).result_int(), 431);
}

TEST_F(ServerTest, GzipAndZstdBodiesAreDecodedWithACap) {
  ServerOptions opts;
  opts.max_body_bytes = 10'000;
  StartServer(opts);
  beast::tcp_stream s(ioc_);
  Connect(s);
  bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/echo", 11);
  req.set(bhttp::field::content_encoding, "gzip");
  req.body() = GzipCompress("{\"compressed\":true}");
  auto res = Send(s, std::move(req));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "{\"compressed\":true}");

  // 1 MB of zeros compresses to ~1 KB: under the wire limit, over the decoded limit.
  beast::tcp_stream s2(ioc_);
  Connect(s2);
  bhttp::request<bhttp::string_body> bomb(bhttp::verb::post, "/echo", 11);
  bomb.set(bhttp::field::content_encoding, "gzip");
  bomb.body() = GzipCompress(std::string(1'000'000, '0'));
  ASSERT_LT(bomb.body().size(), 10'000u);
  auto r2 = Send(s2, std::move(bomb));
  EXPECT_EQ(r2.result_int(), 413);
  EXPECT_NE(r2.body().find("decompressed body is over max_body_bytes"), std::string::npos);

  beast::tcp_stream s3(ioc_);
  Connect(s3);
  bhttp::request<bhttp::string_body> bad(bhttp::verb::post, "/echo", 11);
  bad.set(bhttp::field::content_encoding, "br");
  bad.body() = "x";
  EXPECT_EQ(Send(s3, std::move(bad)).result_int(), 415);
}

TEST_F(ServerTest, SlowClientIsCutOff) {
  ServerOptions opts;
  opts.read_timeout = std::chrono::milliseconds(200);
  StartServer(opts);
  tcp::socket sock(ioc_);
  tcp::resolver r(ioc_);
  net::connect(sock, r.resolve("127.0.0.1", port_));
  // Start a request and never finish it.
  net::write(sock, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")));
  auto start = std::chrono::steady_clock::now();
  char c;
  boost::system::error_code ec;
  size_t n = sock.read_some(net::buffer(&c, 1), ec);  // blocks until the server closes
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(ServerTest, StopFinishesRequestsInFlight) {
  StartServer();
  auto fut = std::async(std::launch::async, [this] { return Post("/slow", "x"); });
  slow_started_.get_future().wait();
  EXPECT_EQ(server_->InFlight(), 1u);
  server_->Stop(std::chrono::seconds(5));
  auto res = fut.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "{\"late\":true}");
  EXPECT_FALSE(res.keep_alive());  // closing after the last response
  // And nothing listens any more.
  tcp::socket sock(ioc_);
  boost::system::error_code ec;
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                             static_cast<unsigned short>(std::stoi(port_))),
               ec);
  EXPECT_TRUE(ec);
}

TEST(HostPort, Parsing) {
  std::string host;
  unsigned short port;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:8080", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(SplitHostPort("8080", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("host:99999", &host, &port).ok());
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.1.2.3"));
}

}  // namespace
}  // namespace sluice::http
