#include "query/result_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>

#include "duck/duck.h"

namespace sluice::query {
namespace {

class ResultJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = duck::Database::Open("", {{"threads", "2"}});
    ASSERT_TRUE(db.ok());
    auto conn = duck::Connection::Open(*db);
    ASSERT_TRUE(conn.ok());
    conn_ = std::move(conn).value();
    ASSERT_TRUE(conn_->Exec("SET TimeZone = 'Asia/Kolkata'").ok());  // not UTC, on purpose
  }

  // Renders `sql`'s result with ResultJsonWriter; "" (and a test failure) on error.
  std::string Render(const std::string& sql, ResultJsonWriter** keep = nullptr) {
    auto r = conn_->Query(sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok()) return "";
    writer_ = std::make_unique<ResultJsonWriter>(r->get());
    while (duckdb_data_chunk c = duckdb_fetch_chunk(*r->get())) {
      writer_->AppendChunk(c);
      duckdb_destroy_data_chunk(&c);
    }
    if (keep) *keep = writer_.get();
    std::string json = writer_->Finish(1.5);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    EXPECT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << "not JSON: " << json;
    return json;
  }

  // The rows array of `sql`'s result: "[[1,2],[3,4]]".
  std::string Rows(const std::string& sql) {
    std::string json = Render(sql);
    size_t a = json.find("\"rows\":");
    size_t b = json.rfind(",\"row_count\"");
    return a == std::string::npos || b == std::string::npos ? json : json.substr(a + 7, b - a - 7);
  }

  // The single row of `sql` as JSON values, one string each.
  std::vector<std::string> Values(const std::string& sql) {
    std::string rows = Rows(sql);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::vector<std::string> out;
    if (parser.parse(rows).get(root) != simdjson::SUCCESS) return out;
    for (simdjson::dom::element v : root.at(0).get_array()) out.push_back(simdjson::minify(v));
    return out;
  }

  std::unique_ptr<duck::Connection> conn_;
  std::unique_ptr<ResultJsonWriter> writer_;
};

TEST_F(ResultJsonTest, DocumentShape) {
  EXPECT_EQ(Render("SELECT 1 AS a, 'x' AS \"b \"\"q\"\"\" FROM range(2)"),
            R"j({"columns":["a","b \"q\""],"types":["INTEGER","VARCHAR"],)j"
            R"j("rows":[[1,"x"],[1,"x"]],"row_count":2,"elapsed_ms":1.5})j");
  EXPECT_EQ(Render("SELECT 1 AS a WHERE false"),
            R"j({"columns":["a"],"types":["INTEGER"],"rows":[],"row_count":0,"elapsed_ms":1.5})j");
}

TEST_F(ResultJsonTest, Integers) {
  EXPECT_EQ(Rows("SELECT 9007199254740992::BIGINT, 9007199254740993::BIGINT, "
                 "-9007199254740992::BIGINT, -9007199254740993::BIGINT, "
                 "18446744073709551615::UBIGINT, 127::TINYINT, 65535::USMALLINT, "
                 "170141183460469231731687303715884105727::HUGEINT, "
                 "(-170141183460469231731687303715884105727 - 1)::HUGEINT, 42::HUGEINT, "
                 "340282366920938463463374607431768211455::UHUGEINT"),
            R"j([[9007199254740992,"9007199254740993",-9007199254740992,"-9007199254740993",)j"
            R"j("18446744073709551615",127,65535,"170141183460469231731687303715884105727",)j"
            R"j("-170141183460469231731687303715884105728",42,)j"
            R"j("340282366920938463463374607431768211455"]])j");
}

TEST_F(ResultJsonTest, DecimalsAndFloats) {
  EXPECT_EQ(Rows("SELECT 12.50::DECIMAL(4,2), -0.05::DECIMAL(3,2), 0::DECIMAL(5,3), "
                 "123456789012.345::DECIMAL(18,3), 1234567890123.456::DECIMAL(18,3), "
                 "12345678901234567890.123456789::DECIMAL(38,9), 7::DECIMAL(38,0)"),
            R"j([[12.50,-0.05,0.000,123456789012.345,"1234567890123.456",)j"
            R"j("12345678901234567890.123456789",7]])j");
  EXPECT_EQ(Rows("SELECT 0.1::FLOAT, 0.1::DOUBLE, 1e300::DOUBLE, -2.5::DOUBLE, 'nan'::DOUBLE, "
                 "'inf'::DOUBLE, '-inf'::FLOAT, 100::DOUBLE"),
            R"j([[0.1,0.1,1e+300,-2.5,"NaN","Infinity","-Infinity",100]])j");
}

TEST_F(ResultJsonTest, TimesAreIsoUtc) {
  EXPECT_EQ(Rows("SELECT TIMESTAMPTZ '2024-05-01 12:00:00.123456+00', "
                 "TIMESTAMP '2024-05-01 12:00:00', TIMESTAMP '1969-12-31 23:59:59.5', "
                 "'2024-05-01 12:00:01'::TIMESTAMP_S, '2024-05-01 12:00:00.25'::TIMESTAMP_MS, "
                 "'2024-05-01 12:00:00.123456789'::TIMESTAMP_NS, DATE '2024-05-01', "
                 "DATE '1900-02-28', 'infinity'::DATE, '-infinity'::TIMESTAMPTZ, "
                 "TIME '13:14:15.5', TIMETZ '13:14:15+02:30', TIMESTAMPTZ '2024-05-01 "
                 "12:00:00+05:30'"),
            R"j([["2024-05-01T12:00:00.123456Z","2024-05-01T12:00:00.000000",)j"
            R"j("1969-12-31T23:59:59.500000","2024-05-01T12:00:01","2024-05-01T12:00:00.250",)j"
            R"j("2024-05-01T12:00:00.123456789","2024-05-01","1900-02-28","infinity",)j"
            R"j("-infinity","13:14:15.500000","13:14:15.000000+02:30",)j"
            R"j("2024-05-01T06:30:00.000000Z"]])j");
}

TEST_F(ResultJsonTest, NestedTypesMatchToJson) {
  // For values whose scalars render the same, our nesting must equal DuckDB's to_json.
  const char* exprs[] = {
      "[1, 2, NULL]",
      "[[1], [], NULL, [2, 3]]",
      "{'a': 1, 'b': 'x', 'c': NULL, 'd': [true, false]}",
      "[{'k': 'v'}, NULL]",
      "MAP {'k1': 1, 'k2': NULL}",
      "MAP {1: 'one', 2: 'two'}",
      "[1, 2, 3]::INTEGER[3]",
      "{'x': {'y': {'z': 'deep \"quoted\"'}}}",
      "[]::VARCHAR[]",
      "['a\nb', 'tab\there', '\\']",
      "{'j': '{\"a\":[1,2]}'::JSON}",
      "[1.5, -0.25]::DOUBLE[]",
  };
  for (const char* e : exprs) {
    std::string sql = std::string("SELECT ") + e + " AS v, to_json(" + e + ")::VARCHAR AS j";
    std::vector<std::string> v = Values(sql);
    ASSERT_EQ(v.size(), 2u) << sql;
    // v[1] is the JSON string holding to_json's text: decode it, then minify.
    simdjson::dom::element str;
    simdjson::dom::parser p2;
    ASSERT_EQ(p2.parse(v[1]).get(str), simdjson::SUCCESS);
    std::string_view text = str.get_string().value();
    simdjson::dom::parser p3;
    simdjson::dom::element parsed;
    ASSERT_EQ(p3.parse(std::string(text)).get(parsed), simdjson::SUCCESS) << text;
    EXPECT_EQ(v[0], simdjson::minify(parsed)) << e;
  }
  // UNION: the current member's value.
  EXPECT_EQ(Rows("SELECT union_value(num := 2)::UNION(num INTEGER, str VARCHAR), "
                 "union_value(str := 'x')::UNION(num INTEGER, str VARCHAR)"),
            R"j([[2,"x"]])j");
}

TEST_F(ResultJsonTest, TextTypesMatchDuckDbText) {
  ASSERT_TRUE(conn_->Exec("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')").ok());
  const char* exprs[] = {
      "INTERVAL '1 year 2 months 3 days 04:05:06.5'",
      "INTERVAL '-1 month'",
      "INTERVAL '1 day' - INTERVAL '1 hour'",
      "INTERVAL '0 seconds'",
      "INTERVAL '30 hours 0.000001 seconds'",
      "INTERVAL '-1 year -2 days -00:00:01'",
      "'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'::UUID",
      "'00000000-0000-0000-0000-000000000000'::UUID",
      "'ffffffff-ffff-ffff-ffff-ffffffffffff'::UUID",
      "'\\xAA\\x00ab''\"\\x5Cc\\x7F'::BLOB",
      "'101100111'::BIT",
      "'1'::BIT",
      "'ok'::mood",
      "123456789012345678901234567890123456789012345::BIGNUM",
      "(-98765432109876543210)::BIGNUM",
      "0::BIGNUM",
      "-1::BIGNUM",
      "255::BIGNUM",
      "256::BIGNUM",
  };
  for (const char* e : exprs) {
    std::string sql = std::string("SELECT ") + e + " AS v, (" + e + ")::VARCHAR AS t";
    std::vector<std::string> v = Values(sql);
    ASSERT_EQ(v.size(), 2u) << sql;
    EXPECT_EQ(v[0], v[1]) << e;
  }
}

TEST_F(ResultJsonTest, TypeNamesMatchTypeof) {
  ASSERT_TRUE(conn_->Exec("CREATE TYPE mood2 AS ENUM ('a', 'b''c')").ok());
  const char* exprs[] = {
      "1::TINYINT",
      "1::SMALLINT",
      "1",
      "1::BIGINT",
      "1::HUGEINT",
      "1::UTINYINT",
      "1::UBIGINT",
      "1::UHUGEINT",
      "1::FLOAT",
      "1::DOUBLE",
      "1.5::DECIMAL(9,2)",
      "1::DECIMAL(38,10)",
      "true",
      "'x'",
      "'x'::BLOB",
      "DATE '2024-01-01'",
      "TIME '01:02:03'",
      "TIMETZ '01:02:03+00'",
      "TIMESTAMP '2024-01-01'",
      "TIMESTAMPTZ '2024-01-01'",
      "'2024-01-01'::TIMESTAMP_S",
      "'2024-01-01'::TIMESTAMP_MS",
      "'2024-01-01'::TIMESTAMP_NS",
      "INTERVAL 1 DAY",
      "gen_random_uuid()",
      "'1'::BIT",
      "'{}'::JSON",
      "[1]",
      "[[1]]",
      "[1]::INTEGER[1]",
      "{'a': 1, 'b c': 'x'}",
      "MAP {'a': 1}",
      "'a'::mood2",
      "union_value(k := 1)",
      "1::BIGNUM",
  };
  for (const char* e : exprs) {
    auto name = conn_->Query(std::string("SELECT typeof(") + e + ")");
    ASSERT_TRUE(name.ok()) << e << ": " << name.status().ToString();
    auto r = conn_->Query(std::string("SELECT ") + e);
    ASSERT_TRUE(r.ok()) << e << ": " << r.status().ToString();
    ResultJsonWriter w(r->get());
    EXPECT_EQ(w.types()[0].name, name->String(0, 0)) << e;
  }
}

TEST_F(ResultJsonTest, JsonColumnsAreEmbeddedOnlyWhenValid) {
  EXPECT_EQ(Rows("SELECT '{\"a\": [1, 2.5, \"x\"], \"b\": null}'::JSON, '3'::JSON, "
                 "'\"s\"'::JSON, [ '{\"k\":1}'::JSON ]"),
            R"j([[{"a": [1, 2.5, "x"], "b": null},3,"s",[{"k":1}]]])j");
  JsonValidator v;
  EXPECT_TRUE(v.IsValid(R"j({"a":[1,2]})j"));
  EXPECT_TRUE(v.IsValid("null"));
  EXPECT_FALSE(v.IsValid("{\"a\":"));
  EXPECT_FALSE(v.IsValid("not json"));
  EXPECT_FALSE(v.IsValid("{} {}"));
}

TEST_F(ResultJsonTest, StringsAreEscaped) {
  EXPECT_EQ(Rows("SELECT 'a\"b\\c' || chr(10) || chr(1) || 'é'"), "[[\"a\\\"b\\\\c\\n\\u0001é\"]]");
}

TEST_F(ResultJsonTest, HundredThousandEventRowsRenderQuickly) {
  ASSERT_TRUE(conn_
                  ->Exec("CREATE TABLE ev AS SELECT uuid()::VARCHAR AS event_id, 'track' AS type, "
                         "'Signup' AS event, 'user-' || (i % 1000) AS user_id, "
                         "NULL::VARCHAR AS anonymous_id, "
                         "TIMESTAMPTZ '2024-05-01 00:00:00+00' + to_seconds(i) AS event_time, "
                         "('{\"plan\":\"pro\",\"n\":' || i || ',\"tags\":[\"a\",\"b\"]}')::JSON "
                         "AS properties, '{\"ip\":\"10.0.0.1\",\"library\":{\"name\":\"js\"}}'"
                         "::JSON AS context, i * 1.5 AS amount FROM range(100000) t(i)")
                  .ok());
  ResultJsonWriter* w = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  std::string json = Render("SELECT * FROM ev", &w);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  EXPECT_NE(json.find("\"row_count\":100000"), std::string::npos);
  EXPECT_LT(ms.count(), 1500) << "rendering 100k rows took " << ms.count() << " ms";
  std::printf("100k event rows (%zu bytes of JSON) in %.1f ms\n", json.size(), ms.count());
}

}  // namespace
}  // namespace sluice::query
