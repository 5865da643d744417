#include "query/result_format.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <string_view>
#include <vector>

namespace sluice::query {
namespace {

namespace dom = simdjson::dom;

struct Cell {
  std::string text;
  bool null = false;
  bool is_string = false;  // a JSON string (so "" is an empty string, not NULL)
};

struct Table {
  std::vector<std::string> columns;
  std::vector<bool> numeric;
  std::vector<std::vector<Cell>> rows;
};

bool IsNumericTypeName(std::string_view t) {
  static constexpr std::string_view kNames[] = {
      "TINYINT",  "SMALLINT", "INTEGER",  "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
      "UINTEGER", "UBIGINT",  "UHUGEINT", "FLOAT",  "DOUBLE",  "BIGNUM"};
  if (t.rfind("DECIMAL", 0) == 0) return true;
  return std::find(std::begin(kNames), std::end(kNames), t) != std::end(kNames);
}

Cell CellOf(dom::element v) {
  Cell c;
  switch (v.type()) {
    case dom::element_type::NULL_VALUE:
      c.null = true;
      break;
    case dom::element_type::STRING:
      c.text = std::string(v.get_string().value());
      c.is_string = true;
      break;
    case dom::element_type::BOOL:
      c.text = v.get_bool().value() ? "true" : "false";
      break;
    case dom::element_type::INT64:
      c.text = std::to_string(v.get_int64().value());
      break;
    case dom::element_type::UINT64:
      c.text = std::to_string(v.get_uint64().value());
      break;
    case dom::element_type::DOUBLE: {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get_double().value());
      c.text.assign(buf, r.ptr);
      break;
    }
    default:  // arrays and objects: their JSON text
      c.text = simdjson::minify(v);
      break;
  }
  return c;
}

Result<Table> ParseResult(const std::string& json) {
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(json).get(root); err) {
    return Status::InvalidArgument(std::string("the query result is not JSON: ") +
                                   simdjson::error_message(err));
  }
  dom::array columns, types, rows;
  if (root["columns"].get(columns) != simdjson::SUCCESS ||
      root["rows"].get(rows) != simdjson::SUCCESS) {
    return Status::InvalidArgument("the query result has no \"columns\" and \"rows\"");
  }
  Table t;
  for (dom::element c : columns) {
    std::string_view name;
    if (c.get(name) != simdjson::SUCCESS) {
      return Status::InvalidArgument("the query result has a column name that is not a string");
    }
    t.columns.emplace_back(name);
  }
  t.numeric.assign(t.columns.size(), false);
  if (root["types"].get(types) == simdjson::SUCCESS) {
    size_t i = 0;
    for (dom::element ty : types) {
      std::string_view name;
      if (i < t.numeric.size() && ty.get(name) == simdjson::SUCCESS) {
        t.numeric[i] = IsNumericTypeName(name);
      }
      ++i;
    }
  }
  for (dom::element r : rows) {
    dom::array values;
    if (r.get(values) != simdjson::SUCCESS) {
      return Status::InvalidArgument("the query result has a row that is not an array");
    }
    std::vector<Cell> row;
    for (dom::element v : values) row.push_back(CellOf(v));
    row.resize(t.columns.size(), Cell{"", true, false});
    t.rows.push_back(std::move(row));
  }
  return t;
}

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Escapes control characters and cuts to `max` code points (the last one "…").
std::string TableCell(const Cell& c, size_t max) {
  if (c.null) return "NULL";
  std::string s;
  s.reserve(c.text.size());
  for (char ch : c.text) {
    switch (ch) {
      case '\n':
        s += "\\n";
        break;
      case '\r':
        s += "\\r";
        break;
      case '\t':
        s += "\\t";
        break;
      default:
        s += ch;
    }
  }
  if (max == 0 || CodePoints(s) <= max) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    bool start = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (start && ++n == max) break;
    out += s[i];
  }
  return out + "…";
}

void Pad(std::string* out, size_t n) { out->append(n, ' '); }

}  // namespace

Result<std::string> FormatTable(const std::string& json, const TableOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(Table t, ParseResult(json));
  const size_t ncol = t.columns.size();
  std::vector<std::vector<std::string>> cells(t.rows.size());
  std::vector<size_t> width(ncol);
  for (size_t c = 0; c < ncol; ++c) width[c] = CodePoints(t.columns[c]);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    cells[r].reserve(ncol);
    for (size_t c = 0; c < ncol; ++c) {
      cells[r].push_back(TableCell(t.rows[r][c], options.max_cell_chars));
      width[c] = std::max(width[c], CodePoints(cells[r].back()));
    }
  }
  std::string out;
  for (size_t c = 0; c < ncol; ++c) {
    out += c ? "| " : " ";
    out += t.columns[c];
    if (c + 1 < ncol) Pad(&out, width[c] - CodePoints(t.columns[c]) + 1);
  }
  out += '\n';
  for (size_t c = 0; c < ncol; ++c) {
    if (c) out += '+';
    out.append(width[c] + 2, '-');
  }
  out += '\n';
  for (const auto& row : cells) {
    for (size_t c = 0; c < ncol; ++c) {
      out += c ? "| " : " ";
      size_t pad = width[c] - CodePoints(row[c]);
      bool last = c + 1 == ncol;
      if (t.numeric[c]) {
        Pad(&out, pad);
        out += row[c];
        if (!last) out += ' ';
      } else {
        out += row[c];
        if (!last) Pad(&out, pad + 1);
      }
    }
    out += '\n';
  }
  out += "(" + std::to_string(t.rows.size()) + (t.rows.size() == 1 ? " row)\n" : " rows)\n");
  return out;
}

Result<std::string> FormatCsv(const std::string& json) {
  SLUICE_ASSIGN_OR_RETURN(Table t, ParseResult(json));
  std::string out;
  auto field = [&out](const std::string& s, bool quote_empty) {
    bool quote = (quote_empty && s.empty()) || s.find_first_of(",\"\r\n") != std::string::npos;
    if (!quote) {
      out += s;
      return;
    }
    out += '"';
    for (char ch : s) {
      if (ch == '"') out += '"';
      out += ch;
    }
    out += '"';
  };
  for (size_t c = 0; c < t.columns.size(); ++c) {
    if (c) out += ',';
    field(t.columns[c], true);
  }
  out += '\n';
  for (const auto& row : t.rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) out += ',';
      if (!row[c].null) field(row[c].text, row[c].is_string);
    }
    out += '\n';
  }
  return out;
}

}  // namespace sluice::query
