// ConnectionPool: connections to one PostgreSQL server, handed out one caller at a time.
//
// Acquire() gives an idle connection, or opens a new one: there is no upper bound, callers
// bound themselves (a store has one committer per buffer shard, one exporter, a few readers).
// A lease returns its connection when it goes, unless the connection is broken (server
// restarted, network) or was left inside a transaction: then it is closed, so the next
// Acquire() connects afresh. That is the whole reconnect logic: a caller that got Unavailable
// retries and gets a new connection.
//
// Concurrency: thread-safe. A Lease belongs to one thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "pg/pg.h"

namespace sluice::pg {

class ConnectionPool {
 public:
  // Keeps at most `max_idle` idle connections (the rest are closed when returned).
  explicit ConnectionPool(std::string conninfo, size_t max_idle = 8)
      : conninfo_(std::move(conninfo)), max_idle_(max_idle) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  class Lease {
   public:
    Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) { o.pool_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr && conn_) pool_->Return(std::move(conn_));
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // An idle connection that is still ok(), or a new one; Connection::Open's error otherwise.
  Result<Lease> Acquire();
  // Closes the idle connections (e.g. after the server restarted).
  void Clear();
  const std::string& conninfo() const { return conninfo_; }

 private:
  void Return(std::unique_ptr<Connection> conn);

  const std::string conninfo_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // protected by mu_
};

}  // namespace sluice::pg
