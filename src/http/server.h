// Server: the HTTP/1.1 front door, on Boost.Beast/Asio (kept out of this header).
//
// Guarantees: keep-alive; `threads` I/O threads (default: one per core); a request's header
// over max_header_bytes gets 431 and its body over max_body_bytes gets 413 (before and after
// Content-Encoding is decoded), then the connection is closed; a connection idle for
// idle_timeout is closed; a request that has started must arrive whole within read_timeout,
// so slow clients are cut off; an unknown path gets 404 and a wrong method 405, both in JSON.
//
// Lifecycle: Route() before Start(); Start() binds (port 0 picks a free port) and starts the
// threads; Stop() stops accepting, lets requests in flight finish and be written (up to
// `grace`), closes every connection and joins the threads. Not copyable.
//
// Concurrency: Route/Start/Stop from one controlling thread; handlers run on I/O threads;
// responders may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/http.h"

namespace sluice::http {

class Session;

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; [v6]:port; port 0 = any free port
  int threads = 0;                        // 0 = std::thread::hardware_concurrency()
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers `handler` for exact `method` and `path`. Before Start() only.
  void Route(std::string method, std::string path, Handler handler);
  // InvalidArgument for an unparseable listen address; IOError (e.g. address in use) when the
  // socket cannot be bound.
  Status Start();
  // "127.0.0.1:54321": the bound address, valid after Start().
  std::string LocalAddress() const;
  // Requests read but not yet answered.
  size_t InFlight() const;
  void Stop(std::chrono::milliseconds grace);

 private:
  friend class Session;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" / "[v6]:port". InvalidArgument with a sentence when malformed.
Status SplitHostPort(const std::string& listen, std::string* host, unsigned short* port);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace sluice::http
