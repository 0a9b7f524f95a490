#include "cli/args.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

Args::Args(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void Args::option(const std::string& name, const std::string& metavar, const std::string& help,
                  std::optional<std::string> default_value) {
  order_.push_back(name);
  specs_[name] = Spec{metavar, help, std::move(default_value), false};
}

void Args::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  specs_[name] = Spec{"", help, std::nullopt, true};
}

const Args::Spec& Args::spec(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) throw std::logic_error("avey " + command_ + ": flag --" + name + " was never declared");
  return it->second;
}

bool Args::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--help" || word == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (word.rfind("--", 0) != 0)
      throw UsageError(fmt::format("avey {}: unexpected argument '{}' (see avey {} --help)", command_, word, command_));
    std::string name = word.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    auto it = specs_.find(name);
    if (it == specs_.end())
      throw UsageError(fmt::format("avey {}: unknown flag --{} (see avey {} --help)", command_, name, command_));
    if (it->second.is_flag) {
      if (inline_value) throw UsageError(fmt::format("avey {}: flag --{} takes no value", command_, name));
      value = "1";
    } else if (!inline_value) {
      if (i + 1 >= argc) throw UsageError(fmt::format("avey {}: flag --{} needs a value ({})", command_, name, it->second.metavar));
      value = argv[++i];
    }
    values_[name] = value;
  }
  return true;
}

bool Args::given(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

bool Args::has(const std::string& name) const { return given(name) || spec(name).default_value.has_value(); }

std::string Args::str(const std::string& name) const {
  const Spec& s = spec(name);
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (s.default_value) return *s.default_value;
  throw UsageError(fmt::format("avey {}: flag --{} is required", command_, name));
}

// The whole of v as a decimal integer.
static bool parse_integer(const std::string& v, int64_t& out) {
  try {
    size_t used = 0;
    out = std::stoll(v, &used);
    return used == v.size();
  } catch (const std::exception&) {
    return false;
  }
}

int64_t Args::integer(const std::string& name) const {
  std::string v = str(name);
  int64_t x = 0;
  if (parse_integer(v, x)) return x;
  throw UsageError(fmt::format("avey {}: --{} expects an integer, got '{}'", command_, name, v));
}

std::vector<std::string> Args::list(const std::string& name) const {
  const std::string v = str(name);
  std::vector<std::string> out;
  for (size_t i = 0; i <= v.size();) {
    const size_t j = std::min(v.find(',', i), v.size());
    out.push_back(v.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::vector<int64_t> Args::integers(const std::string& name) const {
  std::vector<int64_t> out;
  for (const std::string& item : list(name)) {
    int64_t x = 0;
    if (!parse_integer(item, x))
      throw UsageError(fmt::format("avey {}: --{} expects comma-separated integers, got '{}'", command_, name, str(name)));
    out.push_back(x);
  }
  return out;
}

double Args::real(const std::string& name) const {
  std::string v = str(name);
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(fmt::format("avey {}: --{} expects a number, got '{}'", command_, name, v));
}

bool Args::on(const std::string& name) const { return spec(name).is_flag && values_.count(name) > 0; }

std::string Args::help() const {
  std::string out = fmt::format("usage: avey {} [flags]\n{}\n\nflags:\n", command_, summary_);
  for (const auto& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = s.is_flag ? "--" + name : "--" + name + " " + s.metavar;
    std::string def = s.default_value ? fmt::format(" (default: {})", *s.default_value) : "";
    out += fmt::format("  {:<28} {}{}\n", left, s.help, def);
  }
  return out;
}
