#include "bench/freshness_probe.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "http/auth.h"
#include "http/test_client.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

// `t` as a TIMESTAMPTZ literal both DuckDB and PostgreSQL read: 'YYYY-MM-DD HH:MM:SS.uuuuuu+00'.
std::string TimestampLiteral(std::chrono::system_clock::time_point t) {
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "TIMESTAMPTZ '%04d-%02d-%02d %02d:%02d:%02d.%06lld+00'",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1'000'000));
  return buf;
}

}  // namespace

void FreshnessProbe::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void FreshnessProbe::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

FreshnessSummary FreshnessProbe::Summary() const {
  FreshnessSummary s = counts_;
  s.p50_ms = histogram_.Percentile(0.50) / 1e3;
  s.p99_ms = histogram_.Percentile(0.99) / 1e3;
  s.max_ms = static_cast<double>(histogram_.Max()) / 1e3;
  return s;
}

void FreshnessProbe::Run(std::stop_token stop) {
  std::string address = options_.url;
  if (address.starts_with("http://")) address = address.substr(7);
  address = address.substr(0, address.find('/'));
  http::TestClient client(address);
  std::vector<std::pair<std::string, std::string>> write_headers = {
      {"Content-Type", "application/json"}};
  if (!options_.write_key.empty()) {
    write_headers.emplace_back("Authorization",
                               "Basic " + http::Base64Encode(options_.write_key + ":"));
  }
  std::vector<std::pair<std::string, std::string>> read_headers = {
      {"Content-Type", "application/json"}};
  if (!options_.read_key.empty()) {
    read_headers.emplace_back("Authorization", "Bearer " + options_.read_key);
  }
  const auto interval = std::chrono::microseconds(static_cast<int64_t>(options_.interval_s * 1e6));
  const auto timeout = std::chrono::microseconds(static_cast<int64_t>(options_.timeout_s * 1e6));
  for (uint64_t n = 0; !stop.stop_requested(); ++n) {
    const auto next = Clock::now() + interval;
    const std::string id = options_.id_prefix + "-probe-" + std::to_string(n);
    const std::string since = TimestampLiteral(
        std::chrono::system_clock::now() -
        std::chrono::microseconds(static_cast<int64_t>(options_.lookback_s * 1e6)));
    auto sent = client.Post(
        "/v1/track",
        R"({"messageId":")" + id + R"(","userId":"sluice-probe","event":"Sluice Probe"})",
        write_headers);
    if (!sent.ok() || sent->status != 200) {
      counts_.errors++;
    } else {
      const auto acked = Clock::now();
      counts_.probes++;
      const std::string query = R"({"sql":"SELECT count(*) FROM events WHERE received_at >= )" +
                                since + " AND event_id = '" + id + R"('","engine":")" +
                                options_.engine + R"("})";
      bool seen = false;
      while (!seen && Clock::now() - acked < timeout) {
        if (stop.stop_requested()) break;  // the run ended: the probe counts neither way
        auto r = client.Post("/v1/query", query, read_headers);
        if (!r.ok() || r->status != 200) {
          counts_.errors++;
        } else if (r->body.find("\"rows\":[[1]]") != std::string::npos) {
          seen = true;
          histogram_.Record(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - acked).count());
          counts_.visible++;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!seen && !stop.stop_requested()) counts_.timed_out++;
    }
    while (!stop.stop_requested() && Clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace sluice::bench
