// Helpers for integration tests that query a running sluice over /v1/query and send batches.
#pragma once

#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/json_writer.h"
#include "http/test_client.h"

namespace sluice::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;
inline const Headers kJson = {{"Content-Type", "application/json"}};

// Runs `sql` over /v1/query; returns the parsed response (fails the test on a non-200).
struct QueryResponse {
  int status = 0;
  std::string body;
  std::vector<std::vector<std::string>> rows;  // every value as text (numbers as digits)
};

inline QueryResponse Query(http::TestClient& c, const std::string& sql,
                           const std::string& engine = "duckdb") {
  QueryResponse out;
  std::string body = "{\"sql\":";
  AppendJsonString(&body, sql);
  body += ",\"engine\":";
  AppendJsonString(&body, engine);
  body += "}";
  auto r = c.Post("/v1/query", body, {{"Content-Type", "application/json"}});
  if (!r.ok()) {
    out.status = -1;
    out.body = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  if (r->status != 200) return out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->body).get(doc)) return out;
  simdjson::dom::array rows;
  if (doc["rows"].get_array().get(rows)) return out;
  for (auto row : rows) {
    std::vector<std::string> vals;
    for (auto v : row.get_array()) {
      if (v.is_string()) {
        vals.emplace_back(std::string(v.get_string().value()));
      } else {
        vals.push_back(simdjson::minify(v));
      }
    }
    out.rows.push_back(std::move(vals));
  }
  return out;
}

// The value of the /metrics sample `series` (its name with its labels, as rendered:
// `sluice_buffer_up{shard="disk"}`); -1 when there is none or /metrics does not answer.
inline double MetricValue(http::TestClient& c, const std::string& series) {
  auto r = c.Get("/metrics");
  if (!r.ok()) return -1;
  const std::string& body = r->body;
  for (size_t pos = 0; (pos = body.find(series, pos)) != std::string::npos; pos += series.size()) {
    if ((pos == 0 || body[pos - 1] == '\n') && body.compare(pos + series.size(), 1, " ") == 0) {
      return std::atof(body.c_str() + pos + series.size() + 1);
    }
  }
  return -1;
}

inline int64_t QueryInt(http::TestClient& c, const std::string& sql,
                        const std::string& engine = "duckdb") {
  QueryResponse q = Query(c, sql, engine);
  if (q.status != 200 || q.rows.empty() || q.rows[0].empty()) {
    ADD_FAILURE() << sql << " -> " << q.status << " " << q.body;
    return -1;
  }
  return std::stoll(q.rows[0][0]);
}

// Polls until `sql` returns `want` (or the deadline passes); returns the last value.
inline int64_t WaitForInt(http::TestClient& c, const std::string& sql, int64_t want,
                          std::chrono::seconds deadline = std::chrono::seconds(60),
                          const std::string& engine = "duckdb") {
  auto until = std::chrono::steady_clock::now() + deadline;
  int64_t got = -1;
  while (std::chrono::steady_clock::now() < until) {
    QueryResponse q = Query(c, sql, engine);
    if (q.status == 200 && !q.rows.empty()) {
      got = std::stoll(q.rows[0][0]);
      if (got == want) return got;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return got;
}

// A batch body of `n` events with messageIds prefix-i, and received spread over event names;
// a non-empty `pad` is added as property "pad" (to make rows heavier).
inline std::string Batch(const std::string& prefix, int from, int n, const std::string& pad = "") {
  std::string body = "{\"batch\":[";
  for (int i = from; i < from + n; ++i) {
    if (i > from) body += ',';
    body += R"({"type":"track","messageId":")" + prefix + std::to_string(i) +
            R"(","userId":"user-)" + std::to_string(i % 97) + R"(","event":")" +
            (i % 3 == 0 ? "Order Completed" : "Product Viewed") + R"(","properties":{"sku":"SKU-)" +
            std::to_string(i % 50) + R"(","price":12.5,"tags":["a","b"])" +
            (pad.empty() ? "" : R"(,"pad":")" + pad + "\"") +
            R"(},"context":{"page":{"path":"/p/)" + std::to_string(i % 7) + R"("}}})";
  }
  return body + "]}";
}

}  // namespace sluice::testing
