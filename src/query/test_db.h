// Test helper: a temp DuckDB file with the hot store's public schema (the `events` view over an
// internal table, events_1m, events_rejected), a little data, and the sandbox applied the way
// the store applies it. For query/ tests only.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "duck/duck.h"
#include "duck/sandbox.h"

namespace sluice::query::testing {

struct TestDb {
  std::filesystem::path dir;  // the only directory the sandbox allows
  std::shared_ptr<duck::Database> db;

  ~TestDb() {
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

inline constexpr const char* kSchema = R"sql(
  SET GLOBAL TimeZone = 'America/New_York';  -- rendering must be UTC whatever the session zone
  CREATE TABLE sluice_events_raw (event_id VARCHAR, type VARCHAR, event VARCHAR,
      user_id VARCHAR, anonymous_id VARCHAR, event_time TIMESTAMPTZ, sent_at TIMESTAMPTZ,
      received_at TIMESTAMPTZ, properties JSON, traits JSON, context JSON, source VARCHAR);
  CREATE VIEW events AS SELECT * FROM sluice_events_raw;
  CREATE TABLE events_1m (minute TIMESTAMPTZ, type VARCHAR, event VARCHAR, count BIGINT);
  CREATE TABLE events_rejected (received_at TIMESTAMPTZ, source VARCHAR, error VARCHAR,
      body VARCHAR);
  CREATE TABLE sluice_offsets (shard VARCHAR, committed_offset UBIGINT);
  CREATE SEQUENCE sluice_seq;
  INSERT INTO sluice_events_raw VALUES
    ('e1', 'track', 'Signup', 'u1', NULL, '2024-05-01 12:00:00.123456+00',
     '2024-05-01 12:00:01+00', '2024-05-01 12:00:02+00', '{"plan":"pro","seats":3}', '{}',
     '{"ip":"1.2.3.4"}', 'web'),
    ('e2', 'identify', NULL, 'u2', 'a2', '2024-05-01 12:01:00+00', NULL,
     '2024-05-01 12:01:00+00', '{}', '{"email":"x@example.com"}', '{}', 'web'),
    ('e3', 'track', 'Purchase', 'u1', NULL, '2024-05-01 13:30:00+00', NULL,
     '2024-05-01 13:30:00+00', '{"amount":12.5,"items":[1,2]}', '{}', '{}', 'ios');
  INSERT INTO events_1m VALUES
    ('2024-05-01 12:00:00+00', 'track', 'Signup', 3),
    ('2024-05-01 12:01:00+00', 'track', 'Signup', 2),
    ('2024-05-01 12:01:00+00', 'identify', NULL, 7),
    ('2024-05-01 12:59:00+00', 'track', 'Purchase', 1),
    ('2024-05-01 13:00:00+00', 'track', 'Purchase', 4),
    ('2024-05-02 00:00:00+00', 'track', 'Signup', 5);
  INSERT INTO events_rejected VALUES ('2024-05-01 12:00:00+00', 'web', 'no userId', '{}');
  INSERT INTO sluice_offsets VALUES ('disk', 42);
)sql";

// Creates the database in a fresh temp dir and applies the sandbox with that dir as the only
// allowed directory. Aborts the test binary on failure (a broken fixture, not a finding).
inline std::unique_ptr<TestDb> MakeTestDb(const std::string& memory_limit = "1GB") {
  static int counter = 0;
  auto t = std::make_unique<TestDb>();
  t->dir = std::filesystem::temp_directory_path() /
           ("sluice-query-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  std::filesystem::remove_all(t->dir);
  std::filesystem::create_directories(t->dir);
  auto db = duck::Database::Open((t->dir / "hot.duckdb").string(), {{"threads", "2"}});
  SLUICE_CHECK_MSG(db.ok(), db.status().ToString());
  t->db = *db;
  auto conn = duck::Connection::Open(t->db);
  SLUICE_CHECK(conn.ok());
  Status st = (*conn)->Exec(kSchema);
  SLUICE_CHECK_MSG(st.ok(), st.ToString());
  duck::SandboxOptions sandbox;
  sandbox.allowed_directories = {t->dir.string()};
  sandbox.memory_limit = memory_limit;
  st = duck::ApplySandbox(**conn, sandbox);
  SLUICE_CHECK_MSG(st.ok(), st.ToString());
  return t;
}

}  // namespace sluice::query::testing
