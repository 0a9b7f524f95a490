#include "cli/json_fields.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& key, const std::string& why) {
  throw std::runtime_error(fmt::format("{}: key '{}': {}", what, key, why));
}

}  // namespace

nlohmann::json parse_json_object(const std::string& text, const std::string& what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error(what + ": not valid JSON");
  if (!j.is_object()) throw std::runtime_error(what + ": expected a JSON object");
  return j;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json_object(const std::string& path) { return parse_json_object(read_text_file(path), path); }

const nlohmann::json& json_field(const nlohmann::json& obj, const std::string& key, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key)) bad(what, key, "missing");
  return obj[key];
}

int64_t json_int(const nlohmann::json& v, const std::string& key, const std::string& what, int64_t min) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
    bad(what, key, "expected an integer, got " + v.dump());
  if (v.get<int64_t>() < min) bad(what, key, fmt::format("must be >= {}, got {}", min, v.dump()));
  return v.get<int64_t>();
}

uint64_t json_uint(const nlohmann::json& v, const std::string& key, const std::string& what) {
  if (!v.is_number_unsigned()) bad(what, key, "expected a non-negative integer, got " + v.dump());
  return v.get<uint64_t>();
}

double json_real(const nlohmann::json& v, const std::string& key, const std::string& what) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) bad(what, key, "expected a finite number, got " + v.dump());
  return v.get<double>();
}

std::string json_string(const nlohmann::json& v, const std::string& key, const std::string& what) {
  if (!v.is_string()) bad(what, key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

double json_number_or_nan(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return NAN;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<double>() : NAN;
}
