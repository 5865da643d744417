// The value rules of PgResultJsonWriter, on PostgreSQL's text forms (no server needed; the
// integration test postgres_query_test.cc renders the same types from a real server).
#include "query/postgres_result.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace sluice::query {
namespace {

// The JSON of one value of type `oid` whose text is `text`.
std::string Render(uint32_t oid, std::string_view text, int typmod = -1) {
  auto type = DescribePgType(oid, typmod);
  EXPECT_TRUE(type.has_value()) << oid;
  if (!type) return "";
  JsonValidator validator;
  std::string out;
  AppendPgValue(*type, text, &validator, &out);
  return out;
}

TEST(PostgresResultTest, NamesTypesAsTheDuckDbEngineDoes) {
  EXPECT_EQ(DescribePgType(20, -1)->name, "BIGINT");
  EXPECT_EQ(DescribePgType(23, -1)->name, "INTEGER");
  EXPECT_EQ(DescribePgType(701, -1)->name, "DOUBLE");
  EXPECT_EQ(DescribePgType(1700, ((10 << 16) | 3) + 4)->name, "DECIMAL(10,3)");
  EXPECT_EQ(DescribePgType(1700, -1)->name, "DECIMAL");
  EXPECT_EQ(DescribePgType(25, -1)->name, "VARCHAR");
  EXPECT_EQ(DescribePgType(3802, -1)->name, "JSON");
  EXPECT_EQ(DescribePgType(1184, -1)->name, "TIMESTAMP WITH TIME ZONE");
  EXPECT_EQ(DescribePgType(1007, -1)->name, "INTEGER[]");
  EXPECT_EQ(DescribePgType(1231, -1)->name, "DECIMAL[]");
  EXPECT_EQ(DescribePgType(1007, -1)->kind, PgValueKind::kArray);
  EXPECT_EQ(DescribePgType(1007, -1)->element, PgValueKind::kInteger);
  EXPECT_FALSE(DescribePgType(869, -1).has_value());  // inet: named by the server
  EXPECT_EQ(OtherPgType(869, "inet").name, "inet");
}

TEST(PostgresResultTest, NumbersAreExactOrStrings) {
  EXPECT_EQ(Render(16, "t"), "true");
  EXPECT_EQ(Render(16, "f"), "false");
  EXPECT_EQ(Render(23, "-42"), "-42");
  EXPECT_EQ(Render(20, "9007199254740992"), "9007199254740992");
  EXPECT_EQ(Render(20, "9007199254740993"), "\"9007199254740993\"");
  EXPECT_EQ(Render(20, "-9223372036854775808"), "\"-9223372036854775808\"");
  EXPECT_EQ(Render(26, "4294967295"), "4294967295");
  EXPECT_EQ(Render(1700, "123.450"), "123.450");
  EXPECT_EQ(Render(1700, "-0.001"), "-0.001");
  EXPECT_EQ(Render(1700, "123456789012345"), "123456789012345");
  EXPECT_EQ(Render(1700, "1234567890123456"), "\"1234567890123456\"");
  EXPECT_EQ(Render(1700, "0.0000000000000000012"), "0.0000000000000000012");
  EXPECT_EQ(Render(1700, "NaN"), "\"NaN\"");
  EXPECT_EQ(Render(1700, "-Infinity"), "\"-Infinity\"");
  EXPECT_EQ(Render(701, "2.5"), "2.5");
  EXPECT_EQ(Render(701, "1e+100"), "1e+100");
  EXPECT_EQ(Render(701, "0.1"), "0.1");
  EXPECT_EQ(Render(701, "NaN"), "\"NaN\"");
  EXPECT_EQ(Render(701, "Infinity"), "\"Infinity\"");
  EXPECT_EQ(Render(701, "-Infinity"), "\"-Infinity\"");
  EXPECT_EQ(Render(700, "1.1"), "1.1");
}

TEST(PostgresResultTest, TimesAreUtcInTheDuckDbForm) {
  EXPECT_EQ(Render(1184, "2024-05-01 12:00:00.123456+00"), "\"2024-05-01T12:00:00.123456Z\"");
  EXPECT_EQ(Render(1184, "2024-05-01 12:00:00.5+00"), "\"2024-05-01T12:00:00.500000Z\"");
  EXPECT_EQ(Render(1184, "2024-05-01 14:30:00+02:30"), "\"2024-05-01T12:00:00.000000Z\"");
  EXPECT_EQ(Render(1184, "2024-05-01 12:00:00-00:00:15"), "\"2024-05-01T12:00:15.000000Z\"");
  EXPECT_EQ(Render(1184, "infinity"), "\"infinity\"");
  EXPECT_EQ(Render(1184, "-infinity"), "\"-infinity\"");
  EXPECT_EQ(Render(1184, "0001-01-01 00:00:00+00 BC"), "\"0000-01-01T00:00:00.000000Z\"");
  EXPECT_EQ(Render(1114, "1969-12-31 23:59:59.999999"), "\"1969-12-31T23:59:59.999999\"");
  EXPECT_EQ(Render(1082, "2024-02-29"), "\"2024-02-29\"");
  EXPECT_EQ(Render(1082, "12345-01-01"), "\"+12345-01-01\"");
  EXPECT_EQ(Render(1083, "12:00:00.5"), "\"12:00:00.500000\"");
  EXPECT_EQ(Render(1083, "24:00:00"), "\"24:00:00.000000\"");
  EXPECT_EQ(Render(1266, "12:00:00.5+05:30"), "\"12:00:00.500000+05:30\"");
  EXPECT_EQ(Render(1266, "01:02:03-08"), "\"01:02:03.000000-08:00\"");
  EXPECT_EQ(Render(1186, "1 year 2 mons 3 days 04:05:06.5"),
            "\"1 year 2 months 3 days 04:05:06.5\"");
  EXPECT_EQ(Render(1186, "-1 days +02:03:00"), "\"-1 day 02:03:00\"");
  EXPECT_EQ(Render(1186, "1 day -00:00:01"), "\"1 day -00:00:01\"");
  EXPECT_EQ(Render(1186, "00:00:00"), "\"00:00:00\"");
  EXPECT_EQ(Render(1186, "100:00:00"), "\"100:00:00\"");
  // Text in another DateStyle or IntervalStyle (a statement that changed it for itself) is
  // kept as the server's text.
  EXPECT_EQ(Render(1184, "Wed May 01 12:00:00 2024 UTC"), "\"Wed May 01 12:00:00 2024 UTC\"");
  EXPECT_EQ(Render(1186, "P1Y2M"), "\"P1Y2M\"");
}

TEST(PostgresResultTest, TextJsonAndBytes) {
  EXPECT_EQ(Render(25, "a \"quoted\"\nline"), R"j("a \"quoted\"\nline")j");
  EXPECT_EQ(Render(2950, "0190b6a4-0000-7000-8000-000000000001"),
            "\"0190b6a4-0000-7000-8000-000000000001\"");
  EXPECT_EQ(Render(3802, R"j({"a": [1, {"b": null}]})j"), R"j({"a": [1, {"b": null}]})j");
  EXPECT_EQ(Render(114, "[1,2]"), "[1,2]");
  EXPECT_EQ(Render(114, "not json"), "\"not json\"");  // cannot happen; still valid output
  EXPECT_EQ(Render(17, "\\x616263ff00"), R"j("abc\\xFF\\x00")j");
  EXPECT_EQ(Render(17, "abc"), "\"abc\"");  // bytea_output escape: the text
  EXPECT_EQ(Render(1560, "0101"), "\"0101\"");
}

TEST(PostgresResultTest, ArraysBecomeJsonArrays) {
  EXPECT_EQ(Render(1007, "{1,2,NULL}"), "[1,2,null]");
  EXPECT_EQ(Render(1007, "{}"), "[]");
  EXPECT_EQ(Render(1007, "{{1,2},{3,NULL}}"), "[[1,2],[3,null]]");
  EXPECT_EQ(Render(1007, "[0:1]={1,2}"), "[1,2]");
  EXPECT_EQ(Render(1009, R"a({"a b","x\"y",NULL,"NULL",plain,"back\\slash"})a"),
            R"j(["a b","x\"y",null,"NULL","plain","back\\slash"])j");
  EXPECT_EQ(Render(3807, R"a({"{\"k\": 1}","[]"})a"), R"j([{"k": 1},[]])j");
  EXPECT_EQ(Render(1185, R"a({"2024-05-01 12:00:00+00",infinity})a"),
            R"j(["2024-05-01T12:00:00.000000Z","infinity"])j");
  EXPECT_EQ(Render(1000, "{t,f}"), "[true,false]");
  EXPECT_EQ(Render(1231, "{1.50,NaN}"), "[1.50,\"NaN\"]");
  EXPECT_EQ(Render(1007, "{1,2"), "\"{1,2\"");  // malformed: the text
}

TEST(PostgresResultTest, WriterMakesTheDocumentAndStopsAtTheByteLimit) {
  PGresult* raw = PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK);
  ASSERT_NE(raw, nullptr);
  PGresAttDesc attrs[2] = {};
  attrs[0].name = const_cast<char*>("n");
  attrs[0].typid = 20;
  attrs[0].typlen = 8;
  attrs[0].atttypmod = -1;
  attrs[1].name = const_cast<char*>("t");
  attrs[1].typid = 1184;
  attrs[1].typlen = 8;
  attrs[1].atttypmod = -1;
  ASSERT_EQ(PQsetResultAttrs(raw, 2, attrs), 1);
  std::string n0 = "1", t0 = "2024-05-01 12:00:00+00";
  ASSERT_EQ(PQsetvalue(raw, 0, 0, n0.data(), static_cast<int>(n0.size())), 1);
  ASSERT_EQ(PQsetvalue(raw, 0, 1, t0.data(), static_cast<int>(t0.size())), 1);
  ASSERT_EQ(PQsetvalue(raw, 1, 0, n0.data(), static_cast<int>(n0.size())), 1);
  ASSERT_EQ(PQsetvalue(raw, 1, 1, nullptr, -1), 1);  // NULL
  std::unique_ptr<PGresult, decltype(&PQclear)> res(raw, &PQclear);

  std::vector<PgColumnType> types = {*DescribePgType(20, -1), *DescribePgType(1184, -1)};
  PgResultJsonWriter w({"n", "t"}, types);
  ASSERT_TRUE(w.AppendRow(res.get(), 0));
  ASSERT_TRUE(w.AppendRow(res.get(), 1));
  EXPECT_EQ(w.rows(), 2u);
  std::string doc = w.Finish(1.23456);
  EXPECT_EQ(doc,
            R"j({"columns":["n","t"],"types":["BIGINT","TIMESTAMP WITH TIME ZONE"],)j"
            R"j("rows":[[1,"2024-05-01T12:00:00.000000Z"],[1,null]],"row_count":2,)j"
            R"j("elapsed_ms":1.235})j");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(doc).get(root), simdjson::SUCCESS);

  PgResultJsonWriter small({"n", "t"}, types);
  EXPECT_TRUE(small.AppendRow(res.get(), 0, 200));
  EXPECT_FALSE(small.AppendRow(res.get(), 0, 100));  // past 100 bytes now
}

}  // namespace
}  // namespace sluice::query
