#include "bench/test_http_server.h"

#include <zlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>

namespace sluice::bench::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const TestHttpServer::Handler& handler)
      : socket_(std::move(socket)), handler_(handler) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(256u << 20);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Handle();
                     });
  }

 private:
  void Handle() {
    auto& req = parser_->get();
    TestRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.content_type = std::string(req[http::field::content_type]);
    r.content_encoding = std::string(req[http::field::content_encoding]);
    r.authorization = std::string(req[http::field::authorization]);
    r.wire_bytes = req.body().size();
    if (r.content_encoding == "gzip") {
      r.body_ok = Gunzip(req.body(), &r.body);
    } else {
      r.body = std::move(req.body());
    }
    const TestReply reply = handler_(r);
    if (reply.drop) {
      beast::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_both, ignored);
      socket_.close(ignored);
      return;
    }
    res_ = {};
    res_.result(static_cast<unsigned>(reply.status));
    res_.version(11);
    res_.set(http::field::content_type, "application/json");
    if (reply.status == 503) res_.set(http::field::retry_after, "1");
    res_.keep_alive(!reply.close && req.keep_alive());
    res_.body() = reply.body;
    res_.prepare_payload();
    http::async_write(socket_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      if (self->res_.keep_alive()) return self->Read();
      beast::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  tcp::socket socket_;
  const TestHttpServer::Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

}  // namespace

struct TestHttpServer::Impl {
  explicit Impl(Handler h) : handler(std::move(h)) {}

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed by Stop()
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), handler)->Read();
      Accept();
    });
  }

  Handler handler;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  uint16_t port = 0;
};

TestHttpServer::TestHttpServer(Handler handler)
    : impl_(std::make_unique<Impl>(std::move(handler))) {}

TestHttpServer::~TestHttpServer() { Stop(); }

Status TestHttpServer::Start() {
  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("test server: " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  return Status::OK();
}

void TestHttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  // Stopping the loop abandons every session; their sockets close when the io_context (and
  // with it the pending handlers that own them) is destroyed with this object.
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->ioc.stop();
  });
  impl_->thread.join();
}

uint16_t TestHttpServer::Port() const { return impl_->port; }

bool Gunzip(const std::string& in, std::string* out) {
  out->clear();
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out->append(buf, sizeof(buf) - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  const bool ok = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  return ok;
}

}  // namespace sluice::bench::testing
