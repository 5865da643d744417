// The dashboard's HTTP routes (DESIGN.md "GET / — the dashboard"):
//
//   GET /                 index.html: Cache-Control no-cache (revalidated with its ETag, so
//                         a new binary's page is seen at once); 304 for a matching
//                         If-None-Match.
//   GET /assets/<file>    the bundle's JS and CSS. Their names carry a hash of their content,
//                         so they are cached for a year as immutable; ETag and 304 as well.
//   GET /v1/live          LiveSampler::Json (live.h); `since=UNIX_SECONDS` limits the series
//                         to newer samples (400 when it is not a number). Read key required
//                         once keys are configured, like /v1/query and /v1/stats (401/403).
//
// The page and its assets need no key: they hold no data, and the page asks for a read key
// itself (kept in the browser's sessionStorage). Every answer from here carries
// X-Content-Type-Options: nosniff; the page also a Content-Security-Policy that allows only
// its own origin (no inline script, nothing from elsewhere).
//
// Concurrency: handlers only read immutable assets and call the thread-safe sampler.
#pragma once

#include <span>

#include "http/auth.h"
#include "http/server.h"
#include "web/assets.h"
#include "web/live.h"

namespace sluice::web {

// Registers the routes above on `server` (before it starts). `keys` (may be null: no keys),
// `live` and the assets' storage must outlive the server.
void RegisterRoutes(http::Server* server, const http::KeyStore* keys, const LiveSampler* live,
                    std::span<const Asset> assets = EmbeddedAssets());

}  // namespace sluice::web
