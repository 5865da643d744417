// The request and response types that handlers see. Deliberately free of Boost.Beast so that
// components other than http/ never include it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::http {

struct Request {
  std::string method;  // "GET", "POST", …
  std::string path;    // "/v1/track", without the query
  std::string query;   // "from=…&to=…", without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;  // already decoded when Content-Encoding was gzip/deflate/zstd
  size_t wire_body_bytes = 0;  // body bytes as received, before decoding
  std::string remote;          // "127.0.0.1:51234"
  int64_t received_at_us = 0;  // wall clock when the whole request had arrived

  // The first header named `lower_name` (lower case), if any.
  std::optional<std::string_view> Header(std::string_view lower_name) const;
  // The decoded value of query parameter `name`, if present.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  // {"success":false,"error":message}
  static Response Error(int status, std::string_view message);
  static Response Json(int status, std::string body);
};

// Completes a request. Must be called exactly once, from any thread; it does not block.
using Responder = std::function<void(Response)>;
// Handles one request. Runs on an I/O thread, so it must not block: hand slow work to
// another thread and call the responder from there.
using Handler = std::function<void(Request&, Responder)>;

}  // namespace sluice::http
