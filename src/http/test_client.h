// A synchronous HTTP/1.1 client for tests: one keep-alive connection, one request at a time.
// Not for production paths (it blocks).
//
// Concurrency: one client per thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string Header(const std::string& lower_name) const;
};

class TestClient {
 public:
  // `address` is "host:port".
  explicit TestClient(std::string address);
  ~TestClient();
  // Sends one request (reconnecting if needed). IOError when the server cannot be reached or
  // closed the connection without answering.
  Result<ClientResponse> Send(const std::string& method, const std::string& target,
                              const std::string& body = "",
                              const std::vector<std::pair<std::string, std::string>>& headers = {});
  Result<ClientResponse> Post(const std::string& target, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Send("POST", target, body, headers);
  }
  Result<ClientResponse> Get(const std::string& target) { return Send("GET", target); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::http
