#include "query/time_range.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json_writer.h"

namespace sluice::query {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// JSON nesting levels walked before giving up with an unbounded answer: far beyond any real
// query, far below what would exhaust a worker thread's stack.
constexpr int kMaxDepth = 400;
// How long after this analysis the statement may start: clock-relative bounds are widened by it.
constexpr int64_t kClockSlackUs = int64_t{10} * 60 * 1000 * 1000;
// Stands for the expression to evaluate in the evaluation skeleton.
constexpr std::string_view kPlaceholder = "sluice:time_range:placeholder";
// The statement that evaluates one bound: try() turns a failing expression into NULL instead
// of an error that would abort the caller's transaction (and refuses volatile functions).
constexpr const char* kSkeletonSql =
    "SELECT epoch_us(try(CAST('sluice:time_range:placeholder' AS TIMESTAMPTZ)))";

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Whether `sql` contains `word` as a whole word, in any case.
bool Mentions(std::string_view sql, std::string_view word) {
  for (size_t i = 0; i + word.size() <= sql.size(); ++i) {
    if (!IEquals(sql.substr(i, word.size()), word)) continue;
    const size_t end = i + word.size();
    if ((i > 0 && IsWordChar(sql[i - 1])) || (end < sql.size() && IsWordChar(sql[end]))) continue;
    return true;
  }
  return false;
}

// The position of the first character of `sql` from `p` on that is not a blank or in a comment.
size_t SkipBlanks(std::string_view sql, size_t p) {
  while (p < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[p]))) {
      ++p;
    } else if (sql.substr(p, 2) == "--") {
      const size_t nl = sql.find('\n', p);
      p = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (sql.substr(p, 2) == "/*") {
      const size_t close = sql.find("*/", p + 2);
      p = close == std::string_view::npos ? sql.size() : close + 2;
    } else {
      break;
    }
  }
  return p;
}

// The statement after a leading EXPLAIN [ANALYZE], or nullopt when `sql` does not start so.
std::optional<std::string_view> AfterExplain(std::string_view sql) {
  size_t p = SkipBlanks(sql, 0);
  auto keyword = [&](std::string_view word) {
    const size_t end = p + word.size();
    if (end > sql.size() || !IEquals(sql.substr(p, word.size()), word) ||
        (end < sql.size() && IsWordChar(sql[end]))) {
      return false;
    }
    p = SkipBlanks(sql, end);
    return true;
  };
  if (!keyword("EXPLAIN")) return std::nullopt;
  if (!keyword("ANALYZE")) (void)keyword("ANALYSE");
  return sql.substr(p);
}

// What a statement that cannot be analysed may read: all of events, if it names it or may run
// SQL built from strings (query(), query_table()).
EventsRange Unanalysable(std::string_view sql) {
  EventsRange r;
  r.reads_events =
      Mentions(sql, "events") || Mentions(sql, "query") || Mentions(sql, "query_table");
  return r;
}

// Accessors for an element whose type the caller has checked.
object AsObject(element e) { return e.get_object().value_unsafe(); }
simdjson::dom::array AsArray(element e) { return e.get_array().value_unsafe(); }
std::string_view AsString(element e) { return e.get_string().value_unsafe(); }

std::string_view StringField(object o, std::string_view key) {
  std::string_view s;
  if (o[key].get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

bool IsNullOrMissing(object o, std::string_view key) {
  element e;
  return o[key].get(e) != simdjson::SUCCESS || e.is_null();
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

// Functions whose value moves with the clock, and the type of their value (an index into
// kShiftedClockSql).
struct ClockFunction {
  std::string_view name;
  size_t kind;
};
constexpr std::array<ClockFunction, 12> kClockFunctions = {{
    {"now", 0},
    {"current_timestamp", 0},
    {"get_current_timestamp", 0},
    {"transaction_timestamp", 0},
    {"current_date", 1},
    {"today", 1},
    {"current_time", 2},
    {"get_current_time", 2},
    {"localtimestamp", 3},
    {"current_localtimestamp", 3},
    {"localtime", 4},
    {"current_localtime", 4},
}};
// The same values 10 minutes (kClockSlackUs) later, in the order of ClockFunction::kind.
constexpr const char* kShiftedClockSql =
    "SELECT now() + INTERVAL 10 MINUTE, CAST(now() + INTERVAL 10 MINUTE AS DATE), "
    "CAST(now() + INTERVAL 10 MINUTE AS TIMETZ), CAST(now() + INTERVAL 10 MINUTE AS TIMESTAMP), "
    "CAST(CAST(now() + INTERVAL 10 MINUTE AS TIMESTAMP) AS TIME)";
constexpr size_t kClockKinds = 5;

const ClockFunction* FindClockFunction(std::string_view name) {
  for (const ClockFunction& f : kClockFunctions) {
    if (IEquals(f.name, name)) return &f;
  }
  return nullptr;
}

// Table functions that read no table (files, metadata, generated rows), so cannot read
// `events`: every other table function in a statement makes it read every window.
bool ReadsNoTable(std::string_view name) {
  static constexpr std::array<std::string_view, 24> kNames = {"range",
                                                              "generate_series",
                                                              "unnest",
                                                              "glob",
                                                              "read_parquet",
                                                              "parquet_scan",
                                                              "parquet_metadata",
                                                              "parquet_schema",
                                                              "parquet_file_metadata",
                                                              "parquet_kv_metadata",
                                                              "read_csv",
                                                              "read_csv_auto",
                                                              "sniff_csv",
                                                              "read_json",
                                                              "read_json_auto",
                                                              "read_json_objects",
                                                              "read_ndjson",
                                                              "read_ndjson_auto",
                                                              "read_ndjson_objects",
                                                              "read_text",
                                                              "read_blob",
                                                              "json_each",
                                                              "json_tree",
                                                              "test_all_types"};
  static constexpr std::array<std::string_view, 2> kPrefixes = {"duckdb_", "pragma_"};
  if (std::any_of(kNames.begin(), kNames.end(),
                  [&](std::string_view n) { return IEquals(n, name); })) {
    return true;
  }
  return std::any_of(kPrefixes.begin(), kPrefixes.end(), [&](std::string_view p) {
    return name.size() > p.size() && IEquals(name.substr(0, p.size()), p);
  });
}

// The SQL keywords (current_date, …) that DuckDB's parser leaves as column references and its
// binder turns into clock functions when no column of that name is in scope.
bool IsClockKeyword(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kKeywords = {
      "current_timestamp", "current_date", "current_time", "localtimestamp", "localtime"};
  return std::any_of(kKeywords.begin(), kKeywords.end(),
                     [&](std::string_view k) { return IEquals(k, name); });
}

// Writes `e` as JSON, except that where `replace` returns a string for a node, that text is
// written in its place.
using Replacer = std::function<std::optional<std::string>(element)>;
void EmitJson(element e, const Replacer& replace, std::string* out) {
  if (auto r = replace(e)) {
    *out += *r;
    return;
  }
  switch (e.type()) {
    case element_type::OBJECT: {
      *out += '{';
      bool first = true;
      for (auto field : AsObject(e)) {
        if (!first) *out += ',';
        first = false;
        AppendJsonString(out, field.key);
        *out += ':';
        EmitJson(field.value, replace, out);
      }
      *out += '}';
      break;
    }
    case element_type::ARRAY: {
      *out += '[';
      bool first = true;
      for (element child : AsArray(e)) {
        if (!first) *out += ',';
        first = false;
        EmitJson(child, replace, out);
      }
      *out += ']';
      break;
    }
    default:
      *out += simdjson::minify(e);
  }
}

// Runs `sql`; nullopt when it fails because of what it says (the caller then knows less), an
// error when DuckDB itself fails: interrupted, or unable to run even SELECT 1 afterwards (a
// broken connection, an aborted transaction).
Result<std::optional<duck::QueryResult>> TryQuery(duck::Connection& conn, const std::string& sql) {
  auto r = conn.Query(sql);
  if (r.ok()) return std::optional<duck::QueryResult>(std::move(*r));
  if (r.status().code() == StatusCode::kUnavailable) return r.status();
  if (auto probe = conn.Query("SELECT 1"); !probe.ok()) return probe.status();
  return std::optional<duck::QueryResult>();
}

// json_serialize_sql(sql): the parse tree as JSON (with "error":true when it does not parse or
// is not a SELECT), or nullopt when even that fails.
Result<std::optional<std::string>> Serialize(duck::Connection& conn, std::string_view sql) {
  SLUICE_ASSIGN_OR_RETURN(
      auto r, TryQuery(conn, "SELECT json_serialize_sql(" + duck::QuoteLiteral(sql) + ")"));
  if (!r || r->rows() != 1 || r->IsNull(0, 0)) return std::optional<std::string>();
  return std::optional<std::string>(r->String(0, 0));
}

// What a constant expression gives as a lower and as an upper bound: the same value, unless it
// moves with the clock.
struct Bounds {
  int64_t lower;
  int64_t upper;
};

// One analysis: walks the serialized statement, bounds each `events` reference, and keeps the
// hull of their ranges.
class Analyzer {
 public:
  explicit Analyzer(duck::Connection& conn) : conn_(conn) {}

  // Walks `statements` (the "statements" array of json_serialize_sql's answer).
  Status Analyze(element statements) {
    ScanDefinedNames(statements, 0);
    return Walk(statements, 0);
  }
  EventsRange Answer(std::string_view sql) const;

 private:
  struct Range {
    int64_t from = INT64_MIN;
    int64_t to = INT64_MAX;
  };

  void ScanDefinedNames(element e, int depth);
  Status Walk(element e, int depth);
  Status WalkSelect(object node, int depth);
  Status WalkFrom(element ref, object node, int depth);
  Status WalkFields(object o, int depth, std::string_view except);
  Status BoundReference(object ref, object node, int depth);
  Status ApplyConjunct(element conjunct, std::string_view qualifier, Range* range, int depth);
  // The value of constant expression `expr` as bounds: nullopt when `expr` is not constant,
  // fails, or is NULL.
  Result<std::optional<Bounds>> BoundsOf(element expr, int depth);
  Result<bool> IsConstant(element expr, int depth, bool* moves_with_clock);
  Result<std::optional<int64_t>> Evaluate(element expr, bool shift_clock);
  Result<bool> ClockKeywordsAreFunctions();
  void AddReference(Range r);

  duck::Connection& conn_;
  bool found_ = false;        // an events reference was seen
  bool too_deep_ = false;     // part of the statement was not walked
  bool dynamic_sql_ = false;  // query('…') / query_table('…') run SQL made from strings
  // Whether clock keywords (current_date, …) may name a column instead: some name in the
  // statement defines such a column, or a table function or PIVOT makes up column names.
  bool clock_keyword_shadowed_ = false;
  int64_t from_ = INT64_MAX;  // hull of the references' ranges
  int64_t to_ = INT64_MIN;

  std::optional<bool> clock_keywords_are_functions_;
  simdjson::dom::parser skeleton_parser_;
  std::optional<element> skeleton_;
  simdjson::dom::parser clock_parser_;
  std::optional<std::array<std::string, kClockKinds>> shifted_clock_;
};

void Analyzer::AddReference(Range r) {
  found_ = true;
  from_ = std::min(from_, r.from);
  to_ = std::max(to_, r.to);
}

EventsRange Analyzer::Answer(std::string_view sql) const {
  EventsRange r;
  if (dynamic_sql_) {  // the SQL it runs may be built from pieces that spell `events`
    r.reads_events = true;
    return r;
  }
  if (too_deep_) {
    r.reads_events = found_ || Mentions(sql, "events");
    return r;
  }
  r.reads_events = found_;
  if (found_) {
    r.from_us = from_;
    r.to_us = to_;
  }
  return r;
}

// Before any bound is evaluated: whether the statement may define a column named like a
// clock keyword (an alias, a CTE's column, a table function's or PIVOT's made-up columns).
void Analyzer::ScanDefinedNames(element e, int depth) {
  if (depth > kMaxDepth) {
    clock_keyword_shadowed_ = true;
    return;
  }
  if (e.is_string()) {
    if (IsClockKeyword(AsString(e))) clock_keyword_shadowed_ = true;
  } else if (e.is_array()) {
    for (element child : AsArray(e)) ScanDefinedNames(child, depth + 1);
  } else if (e.is_object()) {
    const std::string_view type = StringField(AsObject(e), "type");
    if (type == "TABLE_FUNCTION" || type == "PIVOT" || type == "SHOW_REF") {
      clock_keyword_shadowed_ = true;
    }
    // Column references and function calls use names; they define none.
    for (auto field : AsObject(e)) {
      if (field.key != "column_names" && field.key != "function_name") {
        ScanDefinedNames(field.value, depth + 1);
      }
    }
  }
}

Status Analyzer::Walk(element e, int depth) {
  if (depth > kMaxDepth) {
    too_deep_ = true;
    return Status::OK();
  }
  if (e.is_array()) {
    for (element child : AsArray(e)) {
      SLUICE_RETURN_IF_ERROR(Walk(child, depth + 1));
    }
    return Status::OK();
  }
  if (!e.is_object()) return Status::OK();
  object o = AsObject(e);
  const std::string_view type = StringField(o, "type");
  if (type == "SELECT_NODE") return WalkSelect(o, depth);
  if (type == "BASE_TABLE" && IEquals(StringField(o, "table_name"), "events")) {
    AddReference({});  // not directly in a SELECT's FROM: nothing bounds it
  }
  if (StringField(o, "class") == "FUNCTION") {
    const std::string_view name = StringField(o, "function_name");
    if (IEquals(name, "query") || IEquals(name, "query_table") ||
        IEquals(name, "json_execute_serialized_sql")) {
      dynamic_sql_ = true;
    }
  }
  if (type == "TABLE_FUNCTION") {
    // A table function may read `events` without naming it as a table: DuckDB's table macros
    // (histogram(events, col) runs query_table('events')), json_execute_serialized_sql(…).
    // Only functions known to read no table pass; any other reads everything.
    element fn;
    if (o["function"].get(fn) != simdjson::SUCCESS || !fn.is_object() ||
        !ReadsNoTable(StringField(AsObject(fn), "function_name"))) {
      dynamic_sql_ = true;
    }
  }
  return WalkFields(o, depth, {});
}

// Walks every field of `o` but `except`.
Status Analyzer::WalkFields(object o, int depth, std::string_view except) {
  for (auto field : o) {
    if (field.key == except) continue;
    SLUICE_RETURN_IF_ERROR(Walk(field.value, depth + 1));
  }
  return Status::OK();
}

Status Analyzer::WalkSelect(object node, int depth) {
  element from;
  if (node["from_table"].get(from) == simdjson::SUCCESS) {
    SLUICE_RETURN_IF_ERROR(WalkFrom(from, node, depth + 1));
  }
  return WalkFields(node, depth, "from_table");
}

// `ref` is directly in the FROM of SELECT `node`: an events reference here is bounded by the
// node's WHERE. Joins are followed when the WHERE filters the rows of both sides.
Status Analyzer::WalkFrom(element ref, object node, int depth) {
  if (depth > kMaxDepth) {
    too_deep_ = true;
    return Status::OK();
  }
  if (!ref.is_object()) return Walk(ref, depth);
  object o = AsObject(ref);
  const std::string_view type = StringField(o, "type");
  if (type == "BASE_TABLE" && IEquals(StringField(o, "table_name"), "events")) {
    SLUICE_RETURN_IF_ERROR(BoundReference(o, node, depth));
    return WalkFields(o, depth, {});
  }
  if (type == "JOIN") {
    // ASOF picks a match by inequality, POSITIONAL by row number, SEMI and ANTI hide the
    // right side from the WHERE: in all of them rows the WHERE rejects still matter.
    const std::string_view ref_type = StringField(o, "ref_type");
    const std::string_view join_type = StringField(o, "join_type");
    const bool direct = (ref_type == "REGULAR" || ref_type == "CROSS" || ref_type == "NATURAL") &&
                        (join_type == "INNER" || join_type == "LEFT" || join_type == "RIGHT" ||
                         join_type == "FULL" || join_type == "OUTER");
    if (direct) {
      for (auto field : o) {
        if (field.key == "left" || field.key == "right") {
          SLUICE_RETURN_IF_ERROR(WalkFrom(field.value, node, depth + 1));
        } else {
          SLUICE_RETURN_IF_ERROR(Walk(field.value, depth + 1));
        }
      }
      return Status::OK();
    }
  }
  return Walk(ref, depth);
}

Status Analyzer::BoundReference(object ref, object node, int depth) {
  // A sample is drawn before the WHERE applies: it depends on rows outside the range. Column
  // aliases may give another column the name received_at.
  element aliases;
  const bool renamed = ref["column_name_alias"].get(aliases) == simdjson::SUCCESS &&
                       aliases.is_array() && AsArray(aliases).size() > 0;
  element where;
  if (!IsNullOrMissing(ref, "sample") || !IsNullOrMissing(node, "sample") || renamed ||
      node["where_clause"].get(where) != simdjson::SUCCESS || where.is_null()) {
    AddReference({});
    return Status::OK();
  }
  std::string_view qualifier = StringField(ref, "alias");
  if (qualifier.empty()) qualifier = StringField(ref, "table_name");

  // The top-level AND conjuncts, nested ANDs flattened.
  std::vector<std::pair<element, int>> stack = {{where, depth + 1}};
  Range range;
  while (!stack.empty()) {
    auto [e, d] = stack.back();
    stack.pop_back();
    if (d > kMaxDepth) {
      too_deep_ = true;
      continue;
    }
    if (!e.is_object()) continue;
    object o = AsObject(e);
    if (StringField(o, "class") == "CONJUNCTION" && StringField(o, "type") == "CONJUNCTION_AND") {
      element children;
      if (o["children"].get(children) == simdjson::SUCCESS && children.is_array()) {
        for (element child : AsArray(children)) stack.emplace_back(child, d + 2);
      }
      continue;
    }
    SLUICE_RETURN_IF_ERROR(ApplyConjunct(e, qualifier, &range, d));
  }
  AddReference(range);
  return Status::OK();
}

// Whether `e` is the received_at column of the reference called `qualifier`.
bool IsReceivedAt(element e, std::string_view qualifier) {
  if (!e.is_object()) return false;
  object o = AsObject(e);
  element names;
  if (StringField(o, "class") != "COLUMN_REF" ||
      o["column_names"].get(names) != simdjson::SUCCESS || !names.is_array()) {
    return false;
  }
  std::vector<std::string_view> parts;
  for (element n : AsArray(names)) {
    if (!n.is_string()) return false;
    parts.push_back(AsString(n));
  }
  if (parts.size() == 1) return IEquals(parts[0], "received_at");
  return parts.size() == 2 && IEquals(parts[0], qualifier) && IEquals(parts[1], "received_at");
}

Status Analyzer::ApplyConjunct(element conjunct, std::string_view qualifier, Range* range,
                               int depth) {
  object o = AsObject(conjunct);
  const std::string_view cls = StringField(o, "class");
  const std::string_view type = StringField(o, "type");
  auto lower = [&](const std::optional<Bounds>& v) {
    if (v) range->from = std::max(range->from, v->lower);
  };
  auto upper = [&](const std::optional<Bounds>& v, bool inclusive) {
    if (v) range->to = std::min(range->to, inclusive ? SaturatingAdd(v->upper, 1) : v->upper);
  };

  if (cls == "COMPARISON") {
    element left, right;
    if (o["left"].get(left) != simdjson::SUCCESS || o["right"].get(right) != simdjson::SUCCESS) {
      return Status::OK();
    }
    std::string_view op = type;
    element constant;
    if (IsReceivedAt(left, qualifier)) {
      constant = right;
    } else if (IsReceivedAt(right, qualifier)) {
      constant = left;
      // c < received_at is received_at > c.
      if (op == "COMPARE_LESSTHAN") {
        op = "COMPARE_GREATERTHAN";
      } else if (op == "COMPARE_GREATERTHAN") {
        op = "COMPARE_LESSTHAN";
      } else if (op == "COMPARE_LESSTHANOREQUALTO") {
        op = "COMPARE_GREATERTHANOREQUALTO";
      } else if (op == "COMPARE_GREATERTHANOREQUALTO") {
        op = "COMPARE_LESSTHANOREQUALTO";
      }
    } else {
      return Status::OK();
    }
    const bool is_lower = op == "COMPARE_GREATERTHAN" || op == "COMPARE_GREATERTHANOREQUALTO";
    const bool is_upper = op == "COMPARE_LESSTHAN" || op == "COMPARE_LESSTHANOREQUALTO";
    const bool is_equal = op == "COMPARE_EQUAL";
    if (!is_lower && !is_upper && !is_equal) return Status::OK();
    SLUICE_ASSIGN_OR_RETURN(std::optional<Bounds> v, BoundsOf(constant, depth + 1));
    if (is_lower || is_equal) lower(v);
    if (is_upper || is_equal) upper(v, op != "COMPARE_LESSTHAN");
    return Status::OK();
  }

  if (cls == "BETWEEN" && type == "COMPARE_BETWEEN") {
    element input, low, high;
    if (o["input"].get(input) != simdjson::SUCCESS || !IsReceivedAt(input, qualifier) ||
        o["lower"].get(low) != simdjson::SUCCESS || o["upper"].get(high) != simdjson::SUCCESS) {
      return Status::OK();
    }
    SLUICE_ASSIGN_OR_RETURN(std::optional<Bounds> lo, BoundsOf(low, depth + 1));
    lower(lo);
    SLUICE_ASSIGN_OR_RETURN(std::optional<Bounds> hi, BoundsOf(high, depth + 1));
    upper(hi, true);
    return Status::OK();
  }

  if (cls == "OPERATOR" && (type == "COMPARE_IN" || type == "OPERATOR_IN")) {
    element children;
    if (o["children"].get(children) != simdjson::SUCCESS || !children.is_array()) {
      return Status::OK();
    }
    simdjson::dom::array list = AsArray(children);
    if (list.size() < 2 || !IsReceivedAt(list.at(0).value_unsafe(), qualifier)) {
      return Status::OK();
    }
    // Every listed value must be known: one that is not could be anywhere.
    Bounds hull = {INT64_MAX, INT64_MIN};
    bool first = true;
    for (element value : list) {
      if (first) {
        first = false;
        continue;
      }
      SLUICE_ASSIGN_OR_RETURN(std::optional<Bounds> v, BoundsOf(value, depth + 1));
      if (!v) return Status::OK();
      hull.lower = std::min(hull.lower, v->lower);
      hull.upper = std::max(hull.upper, v->upper);
    }
    lower(hull);
    upper(hull, true);
  }
  return Status::OK();
}

Result<std::optional<Bounds>> Analyzer::BoundsOf(element expr, int depth) {
  using None = std::optional<Bounds>;
  bool moves = false;
  SLUICE_ASSIGN_OR_RETURN(bool constant, IsConstant(expr, depth, &moves));
  if (!constant) return None();
  SLUICE_ASSIGN_OR_RETURN(std::optional<int64_t> now, Evaluate(expr, false));
  if (!now) return None();
  if (!moves) return None(Bounds{*now, *now});
  // The statement runs up to kClockSlackUs later: take the extreme of both instants (the
  // expression may move either way), and widen an upper bound by the slack as well.
  SLUICE_ASSIGN_OR_RETURN(std::optional<int64_t> later, Evaluate(expr, true));
  Bounds b{*now, SaturatingAdd(*now, kClockSlackUs)};
  if (later) {
    b.lower = std::min(b.lower, *later);
    b.upper = std::max(b.upper, *later);
  }
  return None(b);
}

// A constant expression: no column (but clock keywords), subquery, parameter, window, star or
// lambda anywhere in it.
Result<bool> Analyzer::IsConstant(element expr, int depth, bool* moves_with_clock) {
  if (depth > kMaxDepth) {
    too_deep_ = true;
    return false;
  }
  if (expr.is_array()) {
    for (element child : AsArray(expr)) {
      SLUICE_ASSIGN_OR_RETURN(bool c, IsConstant(child, depth + 1, moves_with_clock));
      if (!c) return false;
    }
    return true;
  }
  if (!expr.is_object()) return true;
  object o = AsObject(expr);
  element cls_element;
  if (o["class"].get(cls_element) == simdjson::SUCCESS) {
    const std::string_view cls = StringField(o, "class");
    if (cls == "COLUMN_REF") {
      element names;
      if (o["column_names"].get(names) != simdjson::SUCCESS || !names.is_array()) return false;
      simdjson::dom::array parts = AsArray(names);
      std::string_view name;
      if (parts.size() != 1 || parts.at(0).get_string().get(name) != simdjson::SUCCESS ||
          !IsClockKeyword(name)) {
        return false;
      }
      SLUICE_ASSIGN_OR_RETURN(bool is_function, ClockKeywordsAreFunctions());
      *moves_with_clock = *moves_with_clock || is_function;
      return is_function;
    }
    if (cls == "FUNCTION") {
      const std::string_view fn = StringField(o, "function_name");
      if (FindClockFunction(fn) != nullptr) *moves_with_clock = true;
      // age(x) is x's distance from today's midnight: it moves with the clock, but not as a
      // timestamp does, so no slack would be right. Not a bound.
      if (IEquals(fn, "age")) return false;
    } else if (cls != "CONSTANT" && cls != "CAST" && cls != "OPERATOR" && cls != "CASE" &&
               cls != "COMPARISON" && cls != "CONJUNCTION") {
      return false;
    }
  }
  for (auto field : o) {
    SLUICE_ASSIGN_OR_RETURN(bool c, IsConstant(field.value, depth + 1, moves_with_clock));
    if (!c) return false;
  }
  return true;
}

// Clock keywords are the clock functions unless a column of that name may be in scope: one in
// the catalog, or one the statement makes up.
Result<bool> Analyzer::ClockKeywordsAreFunctions() {
  if (clock_keyword_shadowed_) return false;
  if (!clock_keywords_are_functions_) {
    SLUICE_ASSIGN_OR_RETURN(
        auto r, TryQuery(conn_,
                         "SELECT count(*) FROM duckdb_columns() WHERE lower(column_name) IN "
                         "('current_timestamp', 'current_date', 'current_time', "
                         "'localtimestamp', 'localtime')"));
    clock_keywords_are_functions_ = r && r->rows() == 1 && r->Int64(0, 0) == 0;
  }
  return *clock_keywords_are_functions_;
}

Result<std::optional<int64_t>> Analyzer::Evaluate(element expr, bool shift_clock) {
  using None = std::optional<int64_t>;
  if (!skeleton_) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> json, Serialize(conn_, kSkeletonSql));
    element root;
    if (!json || skeleton_parser_.parse(*json).get(root) != simdjson::SUCCESS) return None();
    skeleton_ = root;
  }
  if (shift_clock && !shifted_clock_) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> json, Serialize(conn_, kShiftedClockSql));
    element list;
    if (!json ||
        clock_parser_.parse(*json)["statements"].at(0)["node"]["select_list"].get(list) !=
            simdjson::SUCCESS ||
        !list.is_array() || AsArray(list).size() != kClockKinds) {
      return None();
    }
    std::array<std::string, kClockKinds> shifted;
    for (size_t i = 0; i < kClockKinds; ++i) {
      shifted[i] = simdjson::minify(AsArray(list).at(i).value_unsafe());
    }
    shifted_clock_ = std::move(shifted);
  }

  const Replacer clock = [&](element e) -> std::optional<std::string> {
    if (!shift_clock || !e.is_object()) return std::nullopt;
    object o = AsObject(e);
    const std::string_view cls = StringField(o, "class");
    const ClockFunction* f = nullptr;
    if (cls == "FUNCTION") {
      f = FindClockFunction(StringField(o, "function_name"));
    } else if (cls == "COLUMN_REF") {
      std::string_view name;
      if (o["column_names"].at(0).get_string().get(name) == simdjson::SUCCESS) {
        f = FindClockFunction(name);
      }
    }
    if (f == nullptr) return std::nullopt;
    return (*shifted_clock_)[f->kind];
  };
  const Replacer placeholder = [&](element e) -> std::optional<std::string> {
    if (!e.is_object()) return std::nullopt;
    object o = AsObject(e);
    std::string_view value;
    if (StringField(o, "class") != "CONSTANT" ||
        o["value"]["value"].get_string().get(value) != simdjson::SUCCESS || value != kPlaceholder) {
      return std::nullopt;
    }
    std::string out;
    EmitJson(expr, clock, &out);
    return out;
  };
  std::string json;
  EmitJson(*skeleton_, placeholder, &json);

  SLUICE_ASSIGN_OR_RETURN(auto deserialized, TryQuery(conn_, "SELECT json_deserialize_sql(" +
                                                                 duck::QuoteLiteral(json) + ")"));
  if (!deserialized || deserialized->rows() != 1 || deserialized->IsNull(0, 0)) return None();
  SLUICE_ASSIGN_OR_RETURN(auto value, TryQuery(conn_, deserialized->String(0, 0)));
  if (!value || value->rows() != 1 || value->columns() != 1 || value->IsNull(0, 0)) return None();
  return None(value->Int64(0, 0));
}

}  // namespace

Result<EventsRange> EventsRangeOf(duck::Connection& conn, const std::string& sql) {
  std::string_view text = sql;
  simdjson::dom::parser parser;
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> json, Serialize(conn, text));
    element root;
    bool serialized = false;
    if (json && parser.parse(*json).get(root) == simdjson::SUCCESS) {
      bool error = true;
      serialized = root["error"].get_bool().get(error) == simdjson::SUCCESS && !error;
    }
    if (!serialized) {
      // Only SELECT statements serialize; EXPLAIN reads what the statement it explains reads.
      if (auto rest = AfterExplain(text)) {
        text = *rest;
        continue;
      }
      return Unanalysable(text);
    }
    element statements;
    if (root["statements"].get(statements) != simdjson::SUCCESS) return Unanalysable(text);
    Analyzer analyzer(conn);
    SLUICE_RETURN_IF_ERROR(analyzer.Analyze(statements));
    return analyzer.Answer(text);
  }
}

}  // namespace sluice::query
