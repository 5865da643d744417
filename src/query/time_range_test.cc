#include "query/time_range.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "duck/duck.h"

namespace sluice::query {
namespace {

constexpr int64_t kHourUs = int64_t{3600} * 1000 * 1000;
constexpr int64_t kSlackUs = int64_t{10} * 60 * 1000 * 1000;  // clock slack
constexpr int64_t kMay1 = 1714521600000000;                   // 2024-05-01 00:00:00 UTC
constexpr int64_t kMay2 = 1714608000000000;                   // 2024-05-02 00:00:00 UTC
constexpr int64_t kNoon = 1714564800000000;                   // 2024-05-01 12:00:00 UTC
constexpr const char* kMay1Sql = "TIMESTAMPTZ '2024-05-01 00:00:00+00'";
constexpr const char* kMay2Sql = "TIMESTAMPTZ '2024-05-02 00:00:00+00'";
constexpr const char* kNoonSql = "TIMESTAMPTZ '2024-05-01 12:00:00+00'";

class TimeRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = duck::Database::Open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(*conn);
    ASSERT_TRUE(conn_
                    ->Exec("SET TimeZone = 'UTC';"
                           "CREATE TABLE events (event_id VARCHAR, user_id VARCHAR, "
                           "  event_time TIMESTAMPTZ, received_at TIMESTAMPTZ);"
                           "CREATE TABLE events_1m (minute TIMESTAMPTZ, count BIGINT);"
                           "CREATE TABLE t (id VARCHAR, received_at TIMESTAMPTZ);")
                    .ok());
  }

  EventsRange Range(const std::string& sql) {
    auto r = EventsRangeOf(*conn_, sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? *r : EventsRange{};
  }

  int64_t Scalar(const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() == 1 ? r->Int64(0, 0) : -1;
  }

  // Expects `sql` to read events in [from, to).
  void ExpectRange(const std::string& sql, int64_t from, int64_t to) {
    SCOPED_TRACE(sql);
    const EventsRange r = Range(sql);
    EXPECT_TRUE(r.reads_events);
    EXPECT_EQ(r.from_us, from);
    EXPECT_EQ(r.to_us, to);
  }
  void ExpectUnbounded(const std::string& sql) { ExpectRange(sql, INT64_MIN, INT64_MAX); }
  void ExpectNoEvents(const std::string& sql) {
    SCOPED_TRACE(sql);
    const EventsRange r = Range(sql);
    EXPECT_FALSE(r.reads_events);
    EXPECT_FALSE(r.bounded());
  }

  std::unique_ptr<duck::Connection> conn_;
};

// column >= from AND column < to
std::string HalfOpen(const char* column, const char* from, const char* to) {
  return std::string(column) + " >= " + from + " AND " + column + " < " + to;
}

TEST_F(TimeRangeTest, StatementsThatDoNotNameEventsNeedNoHistory) {
  ExpectNoEvents("SELECT 1");
  ExpectNoEvents("SELECT count(*) FROM events_1m");
  ExpectNoEvents("SELECT 'events' AS word, count(*) FROM t");
  ExpectNoEvents("FROM events_1m WHERE minute >= now() - INTERVAL 1 HOUR");
}

TEST_F(TimeRangeTest, NoWhereReadsEverything) {
  const EventsRange r = Range("SELECT count(*) FROM events");
  EXPECT_TRUE(r.reads_events);
  EXPECT_FALSE(r.bounded());
  ExpectUnbounded("FROM events");
  ExpectUnbounded("SELECT * FROM main.events LIMIT 10");
}

TEST_F(TimeRangeTest, LowerAndUpperLiterals) {
  ExpectRange("SELECT count(*) FROM events WHERE " + HalfOpen("received_at", kMay1Sql, kMay2Sql),
              kMay1, kMay2);
  // > keeps the constant as the lower bound; <= admits the constant itself.
  ExpectRange(std::string("SELECT * FROM events WHERE received_at > ") + kMay1Sql +
                  " AND received_at <= " + kMay2Sql,
              kMay1, kMay2 + 1);
  ExpectRange(std::string("SELECT * FROM events WHERE received_at >= ") + kNoonSql, kNoon,
              INT64_MAX);
  ExpectRange(std::string("SELECT * FROM events WHERE received_at < ") + kNoonSql, INT64_MIN,
              kNoon);
  // Several conjuncts intersect, nested ANDs included.
  ExpectRange(std::string("SELECT * FROM events WHERE (received_at >= ") + kMay1Sql +
                  " AND (user_id = 'u1' AND received_at >= " + kNoonSql + ")) AND received_at < " +
                  kMay2Sql + " AND received_at < " + kMay2Sql + " + INTERVAL 1 DAY",
              kNoon, kMay2);
}

TEST_F(TimeRangeTest, BetweenInAndEqual) {
  ExpectRange(std::string("SELECT * FROM events WHERE received_at BETWEEN ") + kMay1Sql + " AND " +
                  kNoonSql,
              kMay1, kNoon + 1);
  ExpectRange(std::string("SELECT * FROM events WHERE received_at IN (") + kNoonSql + ", " +
                  kMay2Sql + ", " + kMay1Sql + ")",
              kMay1, kMay2 + 1);
  ExpectRange(std::string("SELECT * FROM events WHERE received_at = ") + kNoonSql, kNoon,
              kNoon + 1);
  // NOT BETWEEN, NOT IN and <> say nothing about a range.
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at NOT BETWEEN ") + kMay1Sql +
                  " AND " + kNoonSql);
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at NOT IN (") + kNoonSql + ")");
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at <> ") + kNoonSql);
  // An IN list with a value that is not constant bounds nothing.
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at IN (") + kNoonSql +
                  ", event_time)");
}

TEST_F(TimeRangeTest, ConstantOnTheLeft) {
  ExpectRange(std::string("SELECT * FROM events WHERE ") + kMay1Sql + " <= received_at AND " +
                  kMay2Sql + " > received_at",
              kMay1, kMay2);
  ExpectRange(std::string("SELECT * FROM events WHERE ") + kMay1Sql + " < received_at AND " +
                  kMay2Sql + " >= received_at",
              kMay1, kMay2 + 1);
  ExpectRange(std::string("SELECT * FROM events WHERE ") + kNoonSql + " = received_at", kNoon,
              kNoon + 1);
}

TEST_F(TimeRangeTest, QualifiedColumns) {
  ExpectRange("SELECT * FROM events e WHERE " + HalfOpen("e.received_at", kMay1Sql, kMay2Sql),
              kMay1, kMay2);
  ExpectRange("SELECT * FROM events AS E WHERE " + HalfOpen("e.RECEIVED_AT", kMay1Sql, kMay2Sql),
              kMay1, kMay2);
  ExpectRange("SELECT * FROM events WHERE " + HalfOpen("events.received_at", kMay1Sql, kMay2Sql),
              kMay1, kMay2);
  ExpectRange("SELECT * FROM main.events WHERE " + HalfOpen("received_at", kMay1Sql, kMay2Sql),
              kMay1, kMay2);
  // With an alias, `events.` no longer names this reference.
  ExpectUnbounded("SELECT * FROM events e WHERE " +
                  HalfOpen("events.received_at", kMay1Sql, kMay2Sql));
  // Renamed columns: received_at might now be another column.
  ExpectUnbounded("SELECT * FROM events AS e(received_at) WHERE " +
                  HalfOpen("received_at", kMay1Sql, kMay2Sql));
}

TEST_F(TimeRangeTest, AnotherTablesReceivedAtBoundsNothing) {
  ExpectUnbounded("SELECT * FROM events e JOIN t x ON e.event_id = x.id WHERE " +
                  HalfOpen("x.received_at", kMay1Sql, kMay2Sql));
  // Both sides bounded: the hull.
  ExpectRange("SELECT * FROM events e JOIN t x ON e.event_id = x.id WHERE " +
                  HalfOpen("x.received_at", kMay1Sql, kMay2Sql) + " AND " +
                  HalfOpen("e.received_at", kNoonSql, kMay2Sql),
              kNoon, kMay2);
  // Outer joins: comparisons reject the NULLs of the missing side.
  ExpectRange("SELECT * FROM t LEFT JOIN events e ON e.event_id = t.id WHERE " +
                  HalfOpen("e.received_at", kNoonSql, kMay2Sql),
              kNoon, kMay2);
}

TEST_F(TimeRangeTest, ClockRelativeBounds) {
  // In a transaction now() stands still, so the answer is exact.
  ASSERT_TRUE(conn_->Exec("BEGIN TRANSACTION READ ONLY").ok());
  const int64_t now = Scalar("SELECT epoch_us(now())");
  ExpectRange(
      "SELECT * FROM events WHERE received_at >= now() - INTERVAL 1 HOUR AND received_at < now()",
      now - kHourUs, now + kSlackUs);
  ExpectRange("SELECT * FROM events WHERE received_at >= current_timestamp - INTERVAL 1 HOUR",
              now - kHourUs, INT64_MAX);
  ExpectRange(
      "SELECT * FROM events WHERE received_at BETWEEN transaction_timestamp() - "
      "INTERVAL 2 HOUR AND get_current_timestamp()",
      now - 2 * kHourUs, now + kSlackUs + 1);
  const int64_t midnight = Scalar("SELECT epoch_us(date_trunc('day', now()))");
  ExpectRange("SELECT * FROM events WHERE received_at >= date_trunc('day', now())", midnight,
              INT64_MAX);
  ExpectRange("SELECT * FROM events WHERE received_at = now()", now, now + kSlackUs + 1);
  // current_date is a keyword DuckDB parses as a column; an upper bound takes the later of
  // "today + 10 min" and "the day 10 min from now".
  const int64_t today = Scalar("SELECT epoch_us(CAST(current_date AS TIMESTAMPTZ))");
  const int64_t today_later =
      Scalar("SELECT epoch_us(CAST(CAST(now() + INTERVAL 10 MINUTE AS DATE) AS TIMESTAMPTZ))");
  ExpectRange("SELECT * FROM events WHERE received_at >= current_date - 7",
              today - 7 * 24 * kHourUs, INT64_MAX);
  ExpectRange("SELECT * FROM events WHERE received_at < current_date", INT64_MIN,
              std::max(today + kSlackUs, today_later));
  ASSERT_TRUE(conn_->Exec("COMMIT").ok());

  // Outside a transaction, now() is this call's time.
  const int64_t before = Scalar("SELECT epoch_us(now())");
  const EventsRange r = Range(
      "SELECT * FROM events WHERE received_at > now() - INTERVAL 1 HOUR AND "
      "received_at <= now()");
  const int64_t after = Scalar("SELECT epoch_us(now())");
  EXPECT_GE(r.from_us, before - kHourUs);
  EXPECT_LE(r.from_us, after - kHourUs);
  EXPECT_GE(r.to_us, before + kSlackUs + 1);
  EXPECT_LE(r.to_us, after + kSlackUs + 1);
}

TEST_F(TimeRangeTest, AColumnNamedLikeAClockKeywordIsNotTheClock) {
  ASSERT_TRUE(conn_->Exec("BEGIN TRANSACTION READ ONLY").ok());
  const int64_t local = Scalar("SELECT epoch_us(CAST(localtimestamp AS TIMESTAMPTZ))");
  ExpectRange("SELECT * FROM events WHERE received_at >= localtimestamp", local, INT64_MAX);
  ASSERT_TRUE(conn_->Exec("COMMIT").ok());

  ExpectUnbounded(
      "SELECT * FROM events, (SELECT TIMESTAMPTZ '2024-05-01 00:00:00+00' AS current_date) d "
      "WHERE received_at >= current_date");
  ASSERT_TRUE(conn_->Exec("CREATE TABLE odd (\"localtimestamp\" TIMESTAMP)").ok());
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= localtimestamp");
}

TEST_F(TimeRangeTest, WhatIsNotAConjunctOfConstantsIsIgnored) {
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at >= ") + kMay1Sql +
                  " OR received_at < " + kMay2Sql);
  // The AND still bounds what it can.
  ExpectRange(std::string("SELECT * FROM events WHERE (received_at >= ") + kMay1Sql +
                  " OR user_id = 'u1') AND received_at < " + kMay2Sql,
              INT64_MIN, kMay2);
  ExpectUnbounded("SELECT * FROM events WHERE NOT (" + HalfOpen("received_at", kMay1Sql, kMay2Sql) +
                  ")");
  // DuckDB's parser itself turns NOT (x < c) into x >= c.
  ExpectRange(std::string("SELECT * FROM events WHERE NOT (received_at < ") + kMay1Sql + ")", kMay1,
              INT64_MAX);
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= event_time");
  ExpectUnbounded(std::string("SELECT * FROM events WHERE received_at::DATE = DATE '2024-05-01'"));
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= $1");
  // Not evaluable: ignored, never an error. try() refuses volatile functions.
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= 'not a time'");
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= NULL");
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= now() - random() * INTERVAL 1 HOUR");
  ExpectUnbounded("SELECT * FROM events WHERE received_at < 'infinity'");
  // Bounds in the enclosing query do not reach a subquery's reference.
  ExpectUnbounded("SELECT * FROM (SELECT * FROM events) s WHERE " +
                  HalfOpen("received_at", kMay1Sql, kMay2Sql));
}

TEST_F(TimeRangeTest, SubqueryInFromWithItsOwnWhere) {
  ExpectRange("SELECT count(*) FROM (SELECT * FROM events WHERE " +
                  HalfOpen("received_at", kMay1Sql, kMay2Sql) + ") s WHERE s.user_id = 'u1'",
              kMay1, kMay2);
}

TEST_F(TimeRangeTest, SetOperationsTakeTheHull) {
  ExpectRange("SELECT event_id FROM events WHERE " + HalfOpen("received_at", kMay1Sql, kNoonSql) +
                  " UNION ALL SELECT event_id FROM events WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql),
              kMay1, kMay2);
  ExpectUnbounded("SELECT event_id FROM events WHERE " +
                  HalfOpen("received_at", kMay1Sql, kNoonSql) +
                  " UNION SELECT event_id FROM events");
  ExpectUnbounded("SELECT event_id FROM events WHERE " +
                  HalfOpen("received_at", kMay1Sql, kNoonSql) +
                  " EXCEPT SELECT event_id FROM events");
}

TEST_F(TimeRangeTest, CommonTableExpressions) {
  ExpectRange("WITH recent AS (SELECT * FROM events WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql) +
                  ") SELECT count(*) FROM recent r JOIN t ON r.event_id = t.id",
              kNoon, kMay2);
  ExpectUnbounded("WITH every AS (SELECT * FROM events) SELECT count(*) FROM every WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql));
}

TEST_F(TimeRangeTest, SelfJoinNeedsBothSidesBounded) {
  ExpectUnbounded("SELECT * FROM events a JOIN events b ON a.user_id = b.user_id WHERE " +
                  HalfOpen("a.received_at", kNoonSql, kMay2Sql));
  ExpectRange("SELECT * FROM events a JOIN events b ON a.user_id = b.user_id WHERE " +
                  HalfOpen("a.received_at", kNoonSql, kMay2Sql) + " AND " +
                  HalfOpen("b.received_at", kMay1Sql, kNoonSql),
              kMay1, kMay2);
  // A semi join's right side is not visible to the WHERE; ASOF matches rows the WHERE rejects;
  // a sample is drawn before the WHERE.
  ExpectUnbounded("SELECT * FROM events a SEMI JOIN events b ON a.user_id = b.user_id WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql));
  ExpectUnbounded(
      "SELECT * FROM events a ASOF JOIN events b ON a.user_id = b.user_id AND "
      "a.received_at >= b.received_at WHERE " +
      HalfOpen("a.received_at", kNoonSql, kMay2Sql) + " AND " +
      HalfOpen("b.received_at", kMay1Sql, kNoonSql));
  ExpectUnbounded("SELECT * FROM events USING SAMPLE 10 WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql));
  ExpectUnbounded("SELECT * FROM events TABLESAMPLE 10% WHERE " +
                  HalfOpen("received_at", kNoonSql, kMay2Sql));
  // A reference inside a JOIN condition's subquery is not bounded by the WHERE.
  ExpectUnbounded(
      "SELECT * FROM t JOIN events_1m m ON m.count = (SELECT count(*) FROM events) WHERE " +
      HalfOpen("t.received_at", kNoonSql, kMay2Sql));
}

TEST_F(TimeRangeTest, BoundFromAScalarSubqueryIsIgnored) {
  ExpectUnbounded("SELECT * FROM events WHERE received_at > (SELECT max(received_at) FROM t)");
  ExpectUnbounded("SELECT * FROM t WHERE received_at > (SELECT max(received_at) FROM events)");
  ExpectUnbounded("SELECT * FROM events WHERE received_at IN (SELECT received_at FROM t)");
  // A subquery with its own bound, inside a WHERE, is bounded by it.
  ExpectRange("SELECT * FROM t WHERE id IN (SELECT event_id FROM events WHERE " +
                  HalfOpen("received_at", kMay1Sql, kNoonSql) + ")",
              kMay1, kNoon);
}

TEST_F(TimeRangeTest, TextThatDoesNotParseFallsBackToTheWord) {
  ExpectUnbounded("SELEC * FROM events WHERE received_at >= now()");
  ExpectUnbounded("DESCRIBE Events");
  ExpectUnbounded("CALL query('SELECT * FROM events')");
  ExpectNoEvents("SELEC * FROM events_1m");
  ExpectNoEvents("SHOW TABLES");
  // Dynamic SQL hides its table names in strings, which may be built from pieces.
  ExpectUnbounded("SELECT * FROM query('SELECT * FROM events')");
  ExpectUnbounded("SELECT * FROM query('SELECT * FROM eve' || 'nts')");
  ExpectUnbounded("SELECT * FROM query_table(['events_1m'])");
  ExpectUnbounded("SUMMARIZE SELECT * FROM query('SELECT 1')");
}

TEST_F(TimeRangeTest, ExplainReadsWhatItExplains) {
  const std::string select =
      "SELECT count(*) FROM events WHERE " + HalfOpen("received_at", kMay1Sql, kMay2Sql);
  ExpectRange(select, kMay1, kMay2);
  ExpectRange("EXPLAIN " + select, kMay1, kMay2);
  ExpectRange("  explain analyze\n" + select, kMay1, kMay2);
  ExpectRange("/* plan */ EXPLAIN -- please\n" + select, kMay1, kMay2);
  ExpectNoEvents("EXPLAIN SELECT 1");
}

TEST_F(TimeRangeTest, StringLiteralsUseTheSessionTimeZone) {
  ExpectRange("SELECT * FROM events WHERE received_at >= '2024-05-01 12:00:00+00'", kNoon,
              INT64_MAX);
  ASSERT_TRUE(conn_->Exec("SET TimeZone = 'America/New_York'").ok());
  // Midnight in New York (EDT, UTC-4), as the comparison itself reads it.
  ExpectRange("SELECT * FROM events WHERE received_at >= DATE '2024-05-01'", kMay1 + 4 * kHourUs,
              INT64_MAX);
  ExpectRange("SELECT * FROM events WHERE received_at < '2024-05-01 00:00:00'", INT64_MIN,
              kMay1 + 4 * kHourUs);
}

TEST_F(TimeRangeTest, ConstantsSurviveTheTripThroughJson) {
  // Escapes and non-ASCII text in strings, DECIMAL and DOUBLE constants, CASE.
  ExpectRange(R"sql(SELECT * FROM events WHERE received_at >=
                    CASE WHEN 'a"b\c é''' <> '' THEN TIMESTAMPTZ '2024-05-01 12:00:00+00' END)sql",
              kNoon, INT64_MAX);
  ExpectRange("SELECT * FROM events WHERE received_at >= to_timestamp(1714521600.25)",
              kMay1 + 250000, INT64_MAX);
  ExpectRange("SELECT * FROM events WHERE received_at < to_timestamp(1714521600.5::DOUBLE)",
              INT64_MIN, kMay1 + 500000);
  ExpectRange("SELECT * FROM events WHERE received_at >= make_timestamptz(2024, 5, 1, 0, 0, 0)",
              kMay1, INT64_MAX);
}

// The contract itself: with `events` cut down to the range, each statement gives the same
// result as with all of it.
TEST_F(TimeRangeTest, RowsOutsideTheRangeDoNotChangeResults) {
  ASSERT_TRUE(conn_
                  ->Exec("DROP TABLE events;"
                         "CREATE TABLE all_events AS SELECT 'e' || i AS event_id, "
                         "  'u' || (i % 3) AS user_id, "
                         "  TIMESTAMPTZ '2024-04-30 00:00:00+00' + i * INTERVAL 37 MINUTE AS "
                         "  event_time, event_time AS received_at FROM range(200) r(i);"
                         "INSERT INTO t SELECT 'e' || i, TIMESTAMPTZ '2024-05-01 00:00:00+00' + "
                         "  i * INTERVAL 1 HOUR FROM range(0, 200, 7) r(i);")
                  .ok());
  auto rows = [&](const std::string& sql) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    std::string out;
    for (uint64_t row = 0; r.ok() && row < r->rows(); ++row) {
      for (uint64_t col = 0; col < r->columns(); ++col) out += r->String(col, row) + "|";
      out += "\n";
    }
    return out;
  };
  const std::string x = "'2024-05-01 05:00:00+00'";
  const std::string y = "'2024-05-02 07:00:00+00'";
  const std::vector<std::string> statements = {
      "SELECT count(*), min(received_at), max(received_at) FROM events WHERE received_at >= " + x +
          " AND received_at < " + y,
      "SELECT user_id, count(*) FROM events WHERE received_at BETWEEN " + x + " AND " + y +
          " GROUP BY ALL ORDER BY ALL",
      "SELECT t.id, e.received_at FROM t LEFT JOIN events e ON e.event_id = t.id WHERE "
      "e.received_at >= " +
          x + " ORDER BY ALL",
      "SELECT count(*) FROM events a FULL JOIN events b ON a.user_id = b.user_id AND "
      "a.received_at < b.received_at WHERE a.received_at >= " +
          x + " AND a.received_at < " + y + " AND b.received_at BETWEEN " + x + " AND " + y,
      "SELECT count(*), count(a.event_id), count(b.event_id) FROM events a FULL JOIN "
      "(SELECT * FROM events WHERE received_at BETWEEN '2024-04-30 12:00:00+00' AND " +
          y + ") b USING (received_at) WHERE received_at >= " + x + " AND received_at < " + y,
      "SELECT event_id, lag(event_id) OVER (ORDER BY received_at) FROM events WHERE "
      "received_at >= " +
          x + " QUALIFY row_number() OVER () < 1000 ORDER BY ALL",
      "SELECT * FROM t WHERE id IN (SELECT event_id FROM events WHERE received_at IN "
      "('2024-04-30 04:19:00+00', '2024-05-01 19:10:00+00')) ORDER BY ALL",
      "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.id AND "
      "e.received_at < " +
          y + ")",
      "WITH w AS (SELECT * FROM events WHERE received_at > " + x +
          ") SELECT user_id, count(DISTINCT event_id) FROM w GROUP BY ALL ORDER BY ALL",
      "SELECT event_id FROM events WHERE received_at = '2024-04-30 00:37:00+00' UNION "
      "SELECT event_id FROM events WHERE received_at >= " +
          y + " ORDER BY ALL",
      "SELECT count(*) FROM events a JOIN events b USING (received_at) WHERE received_at <= " + x,
  };
  for (const std::string& sql : statements) {
    SCOPED_TRACE(sql);
    ASSERT_TRUE(conn_->Exec("CREATE OR REPLACE VIEW events AS FROM all_events").ok());
    const EventsRange range = Range(sql);
    EXPECT_TRUE(range.reads_events);
    EXPECT_TRUE(range.bounded());
    const std::string all = rows(sql);
    ASSERT_TRUE(conn_
                    ->Exec("CREATE OR REPLACE VIEW events AS FROM all_events WHERE epoch_us("
                           "received_at) >= " +
                           std::to_string(range.from_us) + " AND epoch_us(received_at) < " +
                           std::to_string(range.to_us))
                    .ok());
    EXPECT_EQ(rows(sql), all);
    EXPECT_NE(all, "");
  }
}

TEST_F(TimeRangeTest, AnEmptyRangeIsReturnedAsIs) {
  ExpectRange("SELECT * FROM events WHERE " + HalfOpen("received_at", kMay2Sql, kMay1Sql), kMay2,
              kMay1);
}

TEST_F(TimeRangeTest, AbsurdNestingIsUnboundedNotACrash) {
  auto nested = [](int levels) {
    std::string sql = "SELECT * FROM events WHERE " + HalfOpen("received_at", kMay1Sql, kMay2Sql);
    for (int i = 0; i < levels; ++i) sql = "SELECT * FROM (" + sql + ") s" + std::to_string(i);
    return sql;
  };
  // About 3 levels of JSON per subquery: 100 is within the walk's depth cap, 200 is not (but
  // within what DuckDB and simdjson accept).
  ExpectRange(nested(100), kMay1, kMay2);
  ExpectUnbounded(nested(200));
  ExpectUnbounded(nested(2000));

  std::string expr = "1";
  for (int i = 0; i < 5000; ++i) expr = "(" + expr + " + 1)";
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= now() AND id = " + expr);
}

TEST_F(TimeRangeTest, LeavesTheCallersTransactionUsable) {
  ASSERT_TRUE(conn_->Exec("BEGIN TRANSACTION READ ONLY").ok());
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= 'not a time'");
  ExpectUnbounded("SELECT * FROM events WHERE received_at >= CAST('x' AS TIMESTAMPTZ) + 1");
  ExpectRange(std::string("SELECT * FROM events WHERE received_at >= ") + kNoonSql, kNoon,
              INT64_MAX);
  EXPECT_EQ(Scalar("SELECT 7"), 7);
  EXPECT_TRUE(conn_->Exec("COMMIT").ok());
}

TEST_F(TimeRangeTest, FailsOnlyWhenDuckDbDoes) {
  // A transaction already aborted: no statement can run, analysis included.
  ASSERT_TRUE(conn_->Exec("BEGIN TRANSACTION").ok());
  ASSERT_FALSE(conn_->Exec("SELECT CAST('x' AS TIMESTAMPTZ)").ok());
  auto r = EventsRangeOf(*conn_, "SELECT * FROM events");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("aborted"), std::string::npos) << r.status().ToString();
  ASSERT_TRUE(conn_->Exec("ROLLBACK").ok());
  EXPECT_TRUE(EventsRangeOf(*conn_, "SELECT * FROM events").ok());
}

// A table function can read `events` without naming the table: DuckDB's table macros run
// query_table() on an argument, json_execute_serialized_sql runs a serialized statement. Any
// table function not known to read no table reads every window.
TEST_F(TimeRangeTest, TableFunctionsThatMayReadEventsReadEverything) {
  ExpectUnbounded("SELECT * FROM histogram(events, received_at)");
  ExpectUnbounded("SELECT * FROM histogram_values(events, received_at)");
  ExpectUnbounded(
      "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT count(*) FROM "
      "events'))");
  ExpectUnbounded("SELECT * FROM some_future_macro(1) WHERE " +
                  HalfOpen("received_at", kMay1Sql, kMay2Sql));
  // Those that read files, metadata or generated rows do not.
  ExpectNoEvents("SELECT * FROM range(10)");
  ExpectNoEvents("SELECT * FROM generate_series(1, 3)");
  ExpectNoEvents("SELECT * FROM duckdb_tables()");
  ExpectNoEvents("SELECT * FROM pragma_table_info('events_1m')");
  ExpectRange(
      "SELECT count(*) FROM events, range(3) WHERE " + HalfOpen("received_at", kMay1Sql, kMay2Sql),
      kMay1, kMay2);
}

// age(x) moves with the clock, but not as a timestamp does: it bounds nothing.
TEST_F(TimeRangeTest, AgeIsNotABound) {
  ExpectUnbounded(
      "SELECT count(*) FROM events WHERE received_at > TIMESTAMPTZ '2024-05-01' + "
      "age(TIMESTAMPTZ '2024-01-01')");
}

}  // namespace
}  // namespace sluice::query
