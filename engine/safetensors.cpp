#include "engine/safetensors.h"

#include "engine/atomic_file.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

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

bool st_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::F32;
  else if (s == "F64") out = DType::F64;
  else if (s == "BF16") out = DType::BF16;
  else if (s == "I32") out = DType::I32;
  else return false;
  return true;
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
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
  write_file_atomic(path, [&](std::ostream& out) {
    uint64_t n = hs.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(hs.data(), std::streamsize(hs.size()));
    for (const Tensor& h : host)
      out.write(static_cast<const char*>(h.raw()), std::streamsize(size_t(h.numel()) * size_of(h.dtype())));
  });
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  auto corrupt = [&](const std::string& why) {
    return std::runtime_error(fmt::format("{}: not a valid safetensors file ({})", path, why));
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the file", path));
  std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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
      DType dt;
      if (!st_dtype(info.at("dtype").get<std::string>(), dt))
        throw corrupt(fmt::format("tensor '{}' has unsupported dtype {}", name, info.at("dtype").dump()));
      Shape shape = info.at("shape").get<Shape>();
      for (int64_t s : shape)
        if (s < 0) throw corrupt(fmt::format("tensor '{}' has a negative dimension", name));
      auto offs = info.at("data_offsets").get<std::vector<uint64_t>>();
      if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > data_size)
        throw corrupt(fmt::format("tensor '{}' lies outside the data ({} bytes): truncated?", name, data_size));
      uint64_t bytes = uint64_t(numel(shape)) * size_of(dt);
      if (offs[1] - offs[0] != bytes)
        throw corrupt(fmt::format("tensor '{}' {} needs {} bytes, its offsets span {}", name, to_string(shape), bytes,
                                  offs[1] - offs[0]));
      Tensor t = Tensor::empty(shape, dt, Device::CPU);
      if (bytes) std::memcpy(t.raw(), blob.data() + data_start + offs[0], bytes);
      out[name] = t;
    } catch (const nlohmann::json::exception&) {
      throw corrupt(fmt::format("tensor '{}' has a malformed entry", name));
    }
  }
  return out;
}

}  // namespace engine
