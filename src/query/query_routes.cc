// POST /v1/query and GET /v1/stats (DESIGN.md "HTTP").
//
//   200  the result
//   400  body not JSON / no "sql" / unknown engine, or "postgres" without --store-read /
//        refused or wrong SQL / bad stats params
//   401  a read key is required (keys configured) and none or an unknown one was sent
//   403  a write key was sent: a write key cannot read
//   413  more rows than --query-max-rows, or the query needed more than the memory limit
//   500  the engine failed (I/O or internal error)
//   503  every query worker busy and the queue full (Retry-After: 1), shutting down, or
//        PostgreSQL unreachable for now (engine postgres)
//   504  the query ran past --query-timeout and was stopped
// Errors are {"success":false,"error":"…"} with a sentence saying what to change.
#include <simdjson.h>

#include <charconv>
#include <memory>

#include "event/parser.h"
#include "http/auth.h"
#include "http/server.h"
#include "query/query_engine.h"

namespace sluice::query {
namespace {

http::Response ErrorResponse(int status, const Status& st) {
  http::Response r = http::Response::Error(status, st.message());
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

int StatusForStats(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kResourceExhausted:
      return 413;
    default:
      return 500;
  }
}

struct QueryBody {
  std::string sql;
  bool postgres = false;  // "engine":"postgres"
};

// {"sql":"…","engine":"duckdb"|"postgres"} → the SQL and engine, or a 400 message.
// `have_postgres`: whether an engine "postgres" is configured.
Result<QueryBody> ParseQueryBody(const std::string& body, bool have_postgres) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(body).get(root); err) {
    return Status::InvalidArgument(std::string("the body is not JSON (") +
                                   simdjson::error_message(err) + "); send {\"sql\":\"SELECT …\"}");
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return Status::InvalidArgument("the body must be a JSON object: {\"sql\":\"SELECT …\"}");
  }
  std::string_view engine = "duckdb";
  if (simdjson::dom::element e; obj["engine"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    if (e.get(engine) != simdjson::SUCCESS) {
      return Status::InvalidArgument("\"engine\" must be a string: \"duckdb\"");
    }
  }
  if (engine == "postgres" && !have_postgres) {
    return Status::InvalidArgument(
        "engine \"postgres\" needs --store postgres://… (not configured)");
  }
  if (engine != "duckdb" && engine != "postgres") {
    return Status::InvalidArgument("unknown engine \"" + std::string(engine) + "\"; use " +
                                   (have_postgres ? "\"duckdb\" or \"postgres\"" : "\"duckdb\""));
  }
  std::string_view sql;
  if (obj["sql"].get(sql) != simdjson::SUCCESS) {
    return Status::InvalidArgument("the body needs \"sql\", a string: {\"sql\":\"SELECT …\"}");
  }
  return QueryBody{std::string(sql), engine == "postgres"};
}

// An ISO-8601 time ("2024-05-01T12:00:00Z") or epoch seconds ("1714564800", "1714564800.5").
Result<int64_t> ParseTimeParam(std::string_view name, const std::string& text) {
  bool numeric = !text.empty();
  bool dot = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '-' && i == 0) continue;
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') numeric = false;
  }
  if (numeric) {
    std::string_view whole = text;
    std::string_view frac;
    if (size_t p = text.find('.'); p != std::string::npos) {
      whole = std::string_view(text).substr(0, p);
      frac = std::string_view(text).substr(p + 1);
    }
    int64_t seconds = 0;
    auto [ptr, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
    if (ec == std::errc() && ptr == whole.data() + whole.size() && seconds > -9'000'000'000'000 &&
        seconds < 9'000'000'000'000) {
      int64_t micros = 0;
      for (size_t i = 0; i < 6; ++i) micros = micros * 10 + (i < frac.size() ? frac[i] - '0' : 0);
      return seconds * 1'000'000 + (text[0] == '-' ? -micros : micros);
    }
  } else {
    auto t = event::ParseTimestamp(text);
    if (t.ok()) return *t;
  }
  return Status::InvalidArgument(std::string(name) + "=" + text +
                                 " is neither an ISO-8601 time (2024-05-01T12:00:00Z) nor "
                                 "epoch seconds");
}

Result<StatsRequest> ParseStatsRequest(const http::Request& req) {
  StatsRequest s;
  if (auto v = req.QueryParam("from"); v && !v->empty()) {
    SLUICE_ASSIGN_OR_RETURN(s.from_us, ParseTimeParam("from", *v));
  }
  if (auto v = req.QueryParam("to"); v && !v->empty()) {
    SLUICE_ASSIGN_OR_RETURN(s.to_us, ParseTimeParam("to", *v));
  }
  if (auto v = req.QueryParam("interval")) s.interval = *v;
  if (auto v = req.QueryParam("event"); v && !v->empty()) s.event = *v;
  return s;
}

}  // namespace

void QueryEngine::RegisterRoutes(http::Server* server, const http::KeyStore* keys,
                                 SqlEngine* postgres, StatsEngine* stats) {
  server->Route("POST", "/v1/query", [this, keys, postgres](http::Request& req,
                                                            http::Responder done) {
    if (auto denied = http::CheckReadAccess(keys, req)) return done(std::move(*denied));
    Result<QueryBody> body = ParseQueryBody(req.body, postgres != nullptr);
    if (!body.ok()) return done(ErrorResponse(400, body.status()));
    SqlEngine* engine = body->postgres ? postgres : this;
    engine->ExecuteAsync(std::move(body->sql), [done = std::move(done)](QueryReply reply) {
      if (reply.result.ok()) return done(http::Response::Json(200, std::move(reply.result->json)));
      done(ErrorResponse(HttpStatusFor(reply.outcome), reply.result.status()));
    });
  });
  StatsEngine* stats_engine = stats != nullptr ? stats : this;
  server->Route("GET", "/v1/stats", [stats_engine, keys](http::Request& req, http::Responder done) {
    if (auto denied = http::CheckReadAccess(keys, req)) return done(std::move(*denied));
    Result<StatsRequest> request = ParseStatsRequest(req);
    if (!request.ok()) return done(ErrorResponse(400, request.status()));
    auto reply = [done = std::move(done)](Result<std::string> r) {
      if (r.ok()) return done(http::Response::Json(200, std::move(r).value()));
      done(ErrorResponse(StatusForStats(r.status()), r.status()));
    };
    stats_engine->StatsAsync(std::move(request).value(), std::move(reply));
  });
}

}  // namespace sluice::query
