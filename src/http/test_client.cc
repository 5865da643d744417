#include "http/test_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string ClientResponse::Header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return "";
}

struct TestClient::Impl {
  std::string host;
  std::string port;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

TestClient::TestClient(std::string address) : impl_(std::make_unique<Impl>()) {
  size_t colon = address.rfind(':');
  impl_->host = address.substr(0, colon);
  impl_->port = address.substr(colon + 1);
}

TestClient::~TestClient() = default;

Result<ClientResponse> TestClient::Send(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    bool fresh = false;
    if (!impl_->stream) {
      impl_->stream.emplace(impl_->ioc);
      tcp::resolver resolver(impl_->ioc);
      auto results = resolver.resolve(impl_->host, impl_->port, ec);
      if (!ec) impl_->stream->connect(results, ec);
      if (ec) {
        impl_->stream.reset();
        return Status::IOError("connect to " + impl_->host + ":" + impl_->port + ": " +
                               ec.message());
      }
      impl_->buffer.clear();
      fresh = true;
    }
    bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
    req.set(bhttp::field::host, impl_->host);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(*impl_->stream, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1ull << 30);
    if (!ec) bhttp::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();
      if (!fresh) continue;  // a stale keep-alive connection: retry once on a new one
      return Status::IOError("request " + method + " " + target + ": " + ec.message());
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    if (!res.keep_alive()) impl_->stream.reset();
    return out;
  }
  return Status::IOError("request " + method + " " + target + " failed twice");
}

}  // namespace sluice::http
