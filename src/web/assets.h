// The dashboard's static files (built from web/ by esbuild), compiled into the binary so that
// `sluice` serves its page with no file or network access (DESIGN.md "web/").
//
// EmbeddedAssets() is generated at build time (embed_assets.cmake) from the bundle's files:
// index.html, and the hashed assets/app-<hash>.js and assets/app-<hash>.css it names. The
// bytes live in static storage for the whole process.
//
// Concurrency: immutable data; free functions without state.
#pragma once

#include <span>
#include <string_view>

namespace sluice::web {

struct Asset {
  std::string_view path;  // URL path: "/" for index.html, else "/assets/<file>"
  std::string_view body;
  std::string_view etag;  // a quoted strong ETag: the first 16 hex digits of its SHA-256
};

// Every file of the bundle. Defined in the generated web_assets.cc.
std::span<const Asset> EmbeddedAssets();

// The Content-Type for a path, by its extension: text/html, text/javascript, text/css (each
// with charset=utf-8), image/svg+xml, image/png, application/json; else
// application/octet-stream. "/" is text/html.
std::string_view ContentTypeFor(std::string_view path);

}  // namespace sluice::web
