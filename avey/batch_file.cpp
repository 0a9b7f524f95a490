#include "avey/batch_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace avey {

static engine::Tensor read_ids(const nlohmann::json& j, const std::string& key, const std::string& path) {
  if (!j.contains(key) || !j[key].is_array() || j[key].empty())
    throw std::runtime_error(path + ": needs \"" + key + "\": [[...], ...]");
  const auto& rows = j[key];
  const size_t T = rows[0].size();
  std::vector<int32_t> v;
  for (const auto& r : rows) {
    if (!r.is_array() || r.size() != T || T == 0)
      throw std::runtime_error(path + ": \"" + key + "\" rows must have one equal, non-zero length");
    for (const auto& x : r) {
      if (!x.is_number_integer() || (x.is_number_unsigned() ? x.get<uint64_t>() > INT32_MAX
                                                              : x.get<int64_t>() < INT32_MIN || x.get<int64_t>() > INT32_MAX))
        throw std::runtime_error(path + ": \"" + key + "\" holds " + x.dump() + ", not a 32-bit integer");
      v.push_back(x.get<int32_t>());
    }
  }
  return engine::Tensor::from(v, {int64_t(rows.size()), int64_t(T)});
}

TokenBatch read_batch_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  nlohmann::json batch;
  try {
    batch = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(path + ": invalid JSON");
  }
  TokenBatch b{read_ids(batch, "input_ids", path), read_ids(batch, "labels", path)};
  if (b.input_ids.shape() != b.labels.shape()) throw std::runtime_error(path + ": input_ids and labels differ in shape");
  return b;
}

}  // namespace avey
