// TestHttpServer: a small HTTP/1.1 server on 127.0.0.1 for the bench tests. It hands every
// request to a handler (gzip bodies already inflated) and answers what the handler says, or
// drops the connection without answering. One event-loop thread; keep-alive.
//
// Concurrency: the handler runs on the server's thread only, one request at a time, so it
// may keep plain counters; read them after Stop().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice::bench::testing {

struct TestRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  std::string body;       // inflated when Content-Encoding is gzip
  bool body_ok = true;    // false when a gzip body did not inflate
  size_t wire_bytes = 0;  // body size as received
};

struct TestReply {
  int status = 200;
  std::string body = R"({"success":true})";
  bool close = false;  // answer with Connection: close, then close
  bool drop = false;   // close without answering
};

class TestHttpServer {
 public:
  using Handler = std::function<TestReply(const TestRequest&)>;
  explicit TestHttpServer(Handler handler);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  // Listens on 127.0.0.1, port 0, and starts the server thread.
  Status Start();
  // Stops accepting, drops every connection, joins the thread. Idempotent.
  void Stop();
  uint16_t Port() const;
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(Port()); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Inflates a gzip member; false if it is not valid gzip.
bool Gunzip(const std::string& in, std::string* out);

}  // namespace sluice::bench::testing
