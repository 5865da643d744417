#include "pg/pool.h"

#include <utility>

namespace sluice::pg {

Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  while (true) {
    std::unique_ptr<Connection> conn;
    {
      std::lock_guard lock(mu_);
      if (idle_.empty()) break;
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    if (conn->Alive()) return Lease(this, std::move(conn));
  }
  SLUICE_ASSIGN_OR_RETURN(auto conn, Connection::Open(conninfo_));
  return Lease(this, std::move(conn));
}

void ConnectionPool::Return(std::unique_ptr<Connection> conn) {
  if (!conn->ok() || conn->InTransaction()) return;  // closed here
  std::lock_guard lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

void ConnectionPool::Clear() {
  std::vector<std::unique_ptr<Connection>> closing;
  std::lock_guard lock(mu_);
  closing.swap(idle_);
}

}  // namespace sluice::pg
