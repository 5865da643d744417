#include "query/watchdog.h"

namespace sluice::query {

void Watchdog::Start() {
  {
    std::lock_guard lock(mu_);
    interrupt_all_ = false;
  }
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Watchdog::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
}

uint64_t Watchdog::Arm(duck::Connection* conn, TimePoint deadline) {
  std::lock_guard lock(mu_);
  uint64_t ticket = next_ticket_++;
  if (interrupt_all_) deadline = std::chrono::steady_clock::now();
  armed_.emplace(ticket, Entry{conn, deadline});
  ++changes_;
  cv_.notify_all();
  return ticket;
}

bool Watchdog::Disarm(uint64_t ticket) {
  std::lock_guard lock(mu_);
  auto it = armed_.find(ticket);
  if (it == armed_.end()) return false;
  bool fired = it->second.fired;
  armed_.erase(it);
  return fired;
}

void Watchdog::InterruptAll() {
  std::lock_guard lock(mu_);
  interrupt_all_ = true;
  auto now = std::chrono::steady_clock::now();
  for (auto& [ticket, e] : armed_) {
    e.conn->Interrupt();
    e.next = now + kRepeat;
  }
  ++changes_;
  cv_.notify_all();
}

void Watchdog::Run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    auto now = std::chrono::steady_clock::now();
    TimePoint next = TimePoint::max();
    for (auto& [ticket, e] : armed_) {
      if (e.next <= now) {
        if (!interrupt_all_) e.fired = true;
        e.conn->Interrupt();  // under mu_: the ticket cannot be disarmed meanwhile
        e.next = now + kRepeat;
      }
      next = std::min(next, e.next);
    }
    const uint64_t seen = changes_;
    auto changed = [&] { return changes_ != seen; };
    if (next == TimePoint::max()) {
      cv_.wait(lock, stop, changed);
    } else {
      cv_.wait_until(lock, stop, next, changed);
    }
  }
}

}  // namespace sluice::query
