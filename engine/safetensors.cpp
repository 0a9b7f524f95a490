#include "engine/safetensors.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/atomic_file.h"

namespace engine {

namespace {

const char* st_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
  }
  return "?";
}

// A dtype as stored: the engine's, or F16 (read as 2-byte halves, converted to F32).
struct Stored {
  DType dtype;
  size_t bytes;  // per element in the file
  bool half;
};

bool st_dtype(const std::string& s, Stored& out) {
  if (s == "F32") out = {DType::F32, 4, false};
  else if (s == "F64") out = {DType::F64, 8, false};
  else if (s == "BF16") out = {DType::BF16, 2, false};
  else if (s == "I32") out = {DType::I32, 4, false};
  else if (s == "F16") out = {DType::F32, 2, true};
  else return false;
  return true;
}

// IEEE half -> float: sign | 5-bit exponent (bias 15) | 10-bit mantissa.
float half_to_float(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float v;
  if (exponent == 0) v = std::ldexp(float(mantissa), -24);                    // subnormal: m * 2^-24
  else if (exponent == 31) v = mantissa ? NAN : INFINITY;
  else v = std::ldexp(float(mantissa | 0x400), exponent - 25);                // 1.m * 2^(e-15)
  return (h & 0x8000) ? -v : v;
}

// A JSON array of non-negative integers into out; false for anything else.
bool unsigned_array(const nlohmann::json& j, std::vector<uint64_t>& out) {
  if (!j.is_array()) return false;
  for (const auto& x : j) {
    if (!x.is_number_unsigned()) return false;
    out.push_back(x.get<uint64_t>());
  }
  return true;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the file", path));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

FileDigest save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw std::runtime_error(fmt::format("{}: duplicate or reserved tensor name '{}'", path, name));
    Tensor h = t.to(Device::CPU);
    uint64_t bytes = uint64_t(h.numel()) * size_of(h.dtype());
    header[name] = {{"dtype", st_name(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(h);
  }
  std::string hs = header.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');
  return write_file_atomic(path, [&](std::ostream& out) {
    uint64_t n = hs.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(hs.data(), std::streamsize(hs.size()));
    for (const Tensor& h : host)
      out.write(static_cast<const char*>(h.raw()), std::streamsize(size_t(h.numel()) * size_of(h.dtype())));
  });
}

std::map<std::string, Tensor> parse_safetensors(const std::string& blob, const std::string& what,
                                                std::map<std::string, std::string>* metadata) {
  auto corrupt = [&](const std::string& why) {
    return std::runtime_error(fmt::format("{}: not a valid safetensors file ({})", what, why));
  };
  if (blob.size() < 8) throw corrupt("shorter than its 8-byte header length");
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(blob[size_t(i)])) << (8 * i);
  if (hlen > blob.size() - 8) throw corrupt(fmt::format("header of {} bytes in a file of {} bytes: truncated", hlen, blob.size()));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(blob.substr(8, hlen));
  } catch (const nlohmann::json::exception&) {
    throw corrupt("the header is not valid JSON");
  }
  if (!header.is_object()) throw corrupt("the header is not a JSON object");
  const uint64_t data_start = 8 + hlen, data_size = blob.size() - data_start;
  std::map<std::string, Tensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& info = it.value();
    if (name == "__metadata__") {
      if (metadata && info.is_object())
        for (auto m = info.begin(); m != info.end(); ++m)
          if (m.value().is_string()) (*metadata)[m.key()] = m.value().get<std::string>();
      continue;
    }
    try {
      Stored st;
      if (!st_dtype(info.at("dtype").get<std::string>(), st))
        throw corrupt(fmt::format("tensor '{}' has unsupported dtype {}", name, info.at("dtype").dump()));
      // Sizes in checked arithmetic: a header may claim any shape.
      std::vector<uint64_t> dims, offs;
      if (!unsigned_array(info.at("shape"), dims))
        throw corrupt(fmt::format("tensor '{}' has a shape that is not a list of sizes", name));
      uint64_t count = 1, bytes = 0;
      Shape shape;
      for (uint64_t s : dims) {
        if (s > uint64_t(INT64_MAX) || __builtin_mul_overflow(count, s, &count))
          throw corrupt(fmt::format("tensor '{}' has an oversized shape", name));
        shape.push_back(int64_t(s));
      }
      if (__builtin_mul_overflow(count, st.bytes, &bytes) || count > uint64_t(INT64_MAX))
        throw corrupt(fmt::format("tensor '{}' {} is too large", name, to_string(shape)));
      if (!unsigned_array(info.at("data_offsets"), offs) || offs.size() != 2)
        throw corrupt(fmt::format("tensor '{}' needs \"data_offsets\": [begin, end]", name));
      if (offs[0] > offs[1] || offs[1] > data_size)
        throw corrupt(fmt::format("tensor '{}' lies outside the data ({} bytes): truncated?", name, data_size));
      if (offs[1] - offs[0] != bytes)
        throw corrupt(fmt::format("tensor '{}' {} needs {} bytes, its offsets span {}", name, to_string(shape), bytes,
                                  offs[1] - offs[0]));
      const char* src = blob.data() + data_start + offs[0];
      Tensor t = Tensor::empty(shape, st.dtype, Device::CPU);
      if (st.half) {
        float* dst = t.data<float>();
        for (uint64_t i = 0; i < count; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);
          dst[i] = half_to_float(h);
        }
      } else if (bytes) {
        std::memcpy(t.raw(), src, bytes);
      }
      out[name] = t;
    } catch (const nlohmann::json::exception&) {
      throw corrupt(fmt::format("tensor '{}' has a malformed entry", name));
    }
  }
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return parse_safetensors(read_whole(path), path, metadata);
}

std::map<std::string, std::string> parse_safetensors_index(const std::string& text, const std::string& what) {
  auto bad = [&](const std::string& why) { return std::runtime_error(what + ": not a valid safetensors index (" + why + ")"); };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad("not valid JSON");
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw bad("needs an object \"weight_map\": {tensor name: shard file}");
  std::map<std::string, std::string> map;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) throw bad("the shard of '" + it.key() + "' is not a string");
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw bad("the shard '" + file + "' of '" + it.key() + "' is not a file name beside the index");
    map[it.key()] = file;
  }
  if (map.empty()) throw bad("the weight map is empty");
  return map;
}

std::map<std::string, Tensor> load_safetensors_index(const std::string& index_path) {
  const std::map<std::string, std::string> map = parse_safetensors_index(read_whole(index_path), index_path);
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  std::set<std::string> shards;
  for (const auto& [name, file] : map) shards.insert(file);
  std::map<std::string, Tensor> out;
  for (const std::string& file : shards) {
    const std::string path = (dir / file).string();
    for (auto& [name, t] : load_safetensors(path)) {
      auto it = map.find(name);
      if (it == map.end() || it->second != file)
        throw std::runtime_error(fmt::format("{}: holds '{}', which {} maps to {}", path, name, index_path,
                                             it == map.end() ? "no shard" : it->second));
      out[name] = t;
    }
  }
  for (const auto& [name, file] : map)
    if (!out.count(name))
      throw std::runtime_error(fmt::format("{}: maps '{}' to {}, which does not hold it", index_path, name, file));
  return out;
}

}  // namespace engine
