#include "query/query_client.h"

#include <simdjson.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/json_writer.h"

namespace sluice::query {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Url {
  std::string host;
  std::string port;
  std::string prefix;  // path before /v1/query, without a trailing '/'
};

Result<Url> ParseUrl(const std::string& server) {
  std::string rest = server;
  if (rest.rfind("https://", 0) == 0) {
    return Status::InvalidArgument("--server " + server +
                                   ": https is not supported by sluice query; use http:// (put a "
                                   "TLS proxy in front of sluice for remote access)");
  }
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  Url u;
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      return Status::InvalidArgument("--server " + server + " has an unclosed '['");
    }
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      u.port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.port.empty()) u.port = "80";
  if (u.host.empty() || u.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("--server " + server +
                                   " is not a URL like http://127.0.0.1:8080");
  }
  return u;
}

std::string ErrorOf(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view error;
  if (parser.parse(body).get(root) == simdjson::SUCCESS &&
      root["error"].get(error) == simdjson::SUCCESS) {
    return std::string(error);
  }
  return body.substr(0, 500);
}

}  // namespace

Result<std::string> PostQuery(const ServerQuery& query) {
  SLUICE_ASSIGN_OR_RETURN(Url url, ParseUrl(query.server));
  std::string body;
  body += "{\"sql\":";
  AppendJsonString(&body, query.sql);
  body += ",\"engine\":";
  AppendJsonString(&body, query.engine);
  body += '}';

  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  const std::string where = url.host + ":" + url.port;
  if (ec) return Status::Unavailable("cannot resolve " + where + ": " + ec.message());
  stream.expires_after(query.timeout);
  stream.connect(endpoints, ec);
  if (ec) return Status::Unavailable("cannot connect to sluice at " + where + ": " + ec.message());

  bhttp::request<bhttp::string_body> req(bhttp::verb::post, url.prefix + "/v1/query", 11);
  req.set(bhttp::field::host, url.host);
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::user_agent, "sluice-query");
  if (!query.read_key.empty()) req.set(bhttp::field::authorization, "Bearer " + query.read_key);
  req.body() = std::move(body);
  req.prepare_payload();
  stream.expires_after(query.timeout);
  bhttp::write(stream, req, ec);
  if (ec) return Status::Unavailable("sending the query to " + where + ": " + ec.message());

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  stream.expires_after(query.timeout);
  bhttp::read(stream, buffer, parser, ec);
  if (ec == beast::error::timeout) {
    return Status::Unavailable("no answer from " + where + " within " +
                               std::to_string(query.timeout.count() / 1000) + " s");
  }
  if (ec) return Status::Unavailable("reading the answer from " + where + ": " + ec.message());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);

  auto& res = parser.get();
  int status = static_cast<int>(res.result_int());
  if (status == 200) return std::move(res.body());
  std::string message = ErrorOf(res.body()) + " (HTTP " + std::to_string(status) + ")";
  if (status >= 500) return Status::Unavailable(std::move(message));
  if (status == 401) return Status::Unauthenticated(std::move(message));
  if (status == 403) return Status::PermissionDenied(std::move(message));
  return Status::InvalidArgument(std::move(message));
}

}  // namespace sluice::query
