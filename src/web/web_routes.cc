#include "web/web_routes.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace sluice::web {
namespace {

constexpr std::string_view kPageSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// Whether an If-None-Match header value names `etag` ("*", or a list holding it, W/ or not).
bool EtagMatches(std::string_view header, std::string_view etag) {
  if (header == "*") return true;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t comma = header.find(',', pos);
    std::string_view item =
        header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

http::Response AssetResponse(const Asset& asset, const http::Request& req) {
  http::Response r;
  const bool page = asset.path == "/";
  r.headers.emplace_back("ETag", std::string(asset.etag));
  r.headers.emplace_back("Cache-Control",
                         page ? "no-cache" : "public, max-age=31536000, immutable");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (page) {
    r.headers.emplace_back("Content-Security-Policy", std::string(kPageSecurityPolicy));
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (auto inm = req.Header("if-none-match"); inm && EtagMatches(*inm, asset.etag)) {
    r.status = 304;
    r.content_type = std::string(ContentTypeFor(asset.path));
    return r;
  }
  r.status = 200;
  r.content_type = std::string(ContentTypeFor(asset.path));
  r.body = std::string(asset.body);
  return r;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view path) {
  if (path == "/" || path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  if (path.ends_with(".png")) return "image/png";
  if (path.ends_with(".json") || path.ends_with(".map")) return "application/json";
  return "application/octet-stream";
}

void RegisterRoutes(http::Server* server, const http::KeyStore* keys, const LiveSampler* live,
                    std::span<const Asset> assets) {
  for (const Asset& asset : assets) {
    server->Route(
        "GET", std::string(asset.path),
        [&asset](http::Request& req, http::Responder done) { done(AssetResponse(asset, req)); });
  }
  server->Route("GET", "/v1/live", [keys, live](http::Request& req, http::Responder done) {
    if (auto denied = http::CheckReadAccess(keys, req)) return done(std::move(*denied));
    double since = 0;
    if (auto v = req.QueryParam("since"); v && !v->empty()) {
      char* end = nullptr;
      errno = 0;
      since = std::strtod(v->c_str(), &end);
      if (end != v->c_str() + v->size() || errno != 0 || !std::isfinite(since)) {
        return done(http::Response::Error(
            400, "since=" + *v + " is not a number: send Unix seconds (e.g. since=1714564800.5)"));
      }
    }
    http::Response r = http::Response::Json(200, live->Json(since));
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    done(std::move(r));
  });
}

}  // namespace sluice::web
