#include "query/result_format.h"

#include <gtest/gtest.h>

namespace sluice::query {
namespace {

const char* kResult =
    R"j({"columns":["id","name","n","props"],"types":["VARCHAR","VARCHAR","BIGINT","JSON"],)j"
    R"j("rows":[["e1","Ann",3,{"a":[1,2]}],)j"
    R"j(["e2","line\nbreak, \"quoted\"",-12,null],)j"
    R"j(["e3","",null,[]]],"row_count":3,"elapsed_ms":1.2})j";

TEST(ResultFormat, Table) {
  auto t = FormatTable(kResult);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t,
            " id | name                  | n    | props\n"
            "----+-----------------------+------+-------------\n"
            " e1 | Ann                   |    3 | {\"a\":[1,2]}\n"
            " e2 | line\\nbreak, \"quoted\" |  -12 | NULL\n"
            " e3 |                       | NULL | []\n"
            "(3 rows)\n");
}

TEST(ResultFormat, TableCutsLongCellsByCharacters) {
  std::string long_value(70, 'x');
  std::string json =
      R"j({"columns":["v"],"types":["VARCHAR"],"rows":[[")j" + long_value + R"j("],["ééééé"]]})j";
  auto t = FormatTable(json, TableOptions{10});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t,
            " v\n"
            "------------\n"
            " xxxxxxxxx…\n"
            " ééééé\n"
            "(2 rows)\n");
  auto one = FormatTable(R"j({"columns":["a"],"types":["INTEGER"],"rows":[[1]]})j");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, " a\n---\n 1\n(1 row)\n");
}

TEST(ResultFormat, Csv) {
  auto c = FormatCsv(kResult);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c,
            "id,name,n,props\n"
            "e1,Ann,3,\"{\"\"a\"\":[1,2]}\"\n"
            "e2,\"line\nbreak, \"\"quoted\"\"\",-12,\n"
            "e3,\"\",,[]\n");
}

TEST(ResultFormat, RejectsWhatIsNotAResult) {
  EXPECT_EQ(FormatTable("nope").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FormatCsv(R"j({"success":false})j").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::query
