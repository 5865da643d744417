#include "cli/config_file.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <vector>

namespace sluice::cli {
namespace {

// The option's value(s) as CLI11 result strings; false if the TOML type is not usable.
bool ToResults(const toml::node& node, std::vector<std::string>* out) {
  if (const auto* arr = node.as_array()) {
    for (const auto& el : *arr) {
      if (el.is_array() || el.is_table() || !ToResults(el, out)) return false;
    }
    return true;
  }
  if (auto s = node.value<std::string>(); s && node.is_string()) {
    out->push_back(*s);
  } else if (node.is_integer()) {
    out->push_back(std::to_string(*node.value<int64_t>()));
  } else if (node.is_floating_point()) {
    out->push_back(fmt::format("{}", *node.value<double>()));
  } else if (node.is_boolean()) {
    out->push_back(*node.value<bool>() ? "true" : "false");
  } else {
    return false;
  }
  return true;
}

}  // namespace

Status ApplyConfigFile(CLI::App* cmd, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(fmt::format("config file {} line {} column {}: {}", path,
                                               where.line, where.column, e.description()));
  }
  for (const auto& [key, node] : table) {
    std::string name(key.str());
    CLI::Option* opt = nullptr;
    try {
      opt = cmd->get_option("--" + name);
    } catch (const CLI::OptionNotFound&) {
      opt = nullptr;
    }
    if (opt == nullptr || name == "config") {
      return Status::InvalidArgument(fmt::format(
          "config file {}: unknown key \"{}\" (keys are the flag names of `sluice {} --help`)",
          path, name, cmd->get_name()));
    }
    if (opt->count() > 0) continue;  // a flag or the environment already set it
    std::vector<std::string> values;
    if (!ToResults(node, &values)) {
      return Status::InvalidArgument(fmt::format(
          "config file {}: \"{}\" must be a string, number, boolean or an array of them", path,
          name));
    }
    try {
      opt->add_result(values);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return Status::InvalidArgument(
          fmt::format("config file {}: \"{}\": {}", path, name, e.what()));
    }
  }
  return Status::OK();
}

}  // namespace sluice::cli
