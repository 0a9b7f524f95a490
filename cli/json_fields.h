// Typed reads of the JSON files the command reads back (train_state.json, run.json, a reference
// config.json). Each error is one line naming the file (`what`) and the key. Strict: an integer
// field must hold an integer that fits (a float such as 1e300 is refused, never cast), a real one
// a finite number.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

// text as a JSON object; throws "what: not valid JSON" or "what: expected a JSON object".
nlohmann::json parse_json_object(const std::string& text, const std::string& what);
nlohmann::json read_json_object(const std::string& path);  // the same from a file
std::string read_text_file(const std::string& path);      // a whole file; throws naming it
// obj[key] when obj is an object with a number there, else NaN: the safe read of an optional
// number (operator[] on a const json with a missing key is undefined behaviour).
double json_number_or_nan(const nlohmann::json& obj, const char* key);

// obj[key], which must exist.
const nlohmann::json& json_field(const nlohmann::json& obj, const std::string& key, const std::string& what);
int64_t json_int(const nlohmann::json& v, const std::string& key, const std::string& what, int64_t min = 0);
uint64_t json_uint(const nlohmann::json& v, const std::string& key, const std::string& what);
double json_real(const nlohmann::json& v, const std::string& key, const std::string& what);
std::string json_string(const nlohmann::json& v, const std::string& key, const std::string& what);
