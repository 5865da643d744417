// Watchdog: interrupts DuckDB statements that run past their deadline.
//
// A worker Arm()s a ticket before it starts a statement and Disarm()s it when the statement is
// done. The watchdog thread calls Connection::Interrupt() on armed tickets whose deadline has
// passed, and again every kRepeat until they are disarmed: DuckDB clears a connection's
// interrupt flag when a statement begins, so an interrupt that lands between two steps of a
// query (prepare, execute) would otherwise be lost. Interrupting happens under the same mutex
// as Disarm, so a connection is never interrupted after its ticket was disarmed.
//
// Concurrency: thread-safe. Lifecycle: Start() starts the thread, Stop() joins it; tickets may
// be armed while stopped (they are then never interrupted by time, only by InterruptAll()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

#include "duck/duck.h"

namespace sluice::query {

class Watchdog {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  Watchdog() = default;
  ~Watchdog() { Stop(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Start();
  void Stop();

  // Interrupts `conn` (borrowed; must stay valid until Disarm) at `deadline` unless disarmed
  // first. Returns the ticket for Disarm.
  uint64_t Arm(duck::Connection* conn, TimePoint deadline);
  // Forgets the ticket. True when the watchdog had already interrupted its statement for
  // running past the deadline.
  bool Disarm(uint64_t ticket);
  // Shutdown: interrupts every armed statement now and every later one as soon as it is
  // armed, until Start() is called again.
  void InterruptAll();

  static constexpr std::chrono::milliseconds kRepeat{100};

 private:
  struct Entry {
    duck::Connection* conn;
    TimePoint next;  // the deadline, then the time of the next repeat
    bool fired = false;
  };
  void Run(std::stop_token stop);

  std::mutex mu_;
  std::condition_variable_any cv_;
  // State below is protected by mu_.
  std::map<uint64_t, Entry> armed_;
  uint64_t next_ticket_ = 1;
  uint64_t changes_ = 0;
  bool interrupt_all_ = false;  // bumped by Arm() to wake the thread for an earlier deadline
  std::jthread thread_;
};

}  // namespace sluice::query
