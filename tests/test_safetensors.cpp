// safetensors: round trip of every dtype with metadata; corrupt and truncated files are one clear error.
#include <fstream>

#include "engine/safetensors.h"
#include "tests/testing.h"

using namespace engine;

namespace {
std::string tmp(const std::string& name) { return std::string(AVEY_BINARY_DIR) + "/" + name; }
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("safetensors: round trip F32, F64, BF16, I32 and metadata") {
  Tensor a = Tensor::from(std::vector<float>{1.5f, -2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from(std::vector<double>{0.1, 0.2}, {2});
  Tensor c = a.to(DType::BF16);
  Tensor d = Tensor::from(std::vector<int32_t>{7, -8, 9}, {3, 1});
  Tensor e = Tensor::zeros({0, 4});
  std::string path = tmp("round.safetensors");
  save_safetensors(path, {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"empty", e}}, {{"step", "12"}});
  std::map<std::string, std::string> meta;
  auto m = load_safetensors(path, &meta);
  CHECK(meta.at("step") == "12");
  REQUIRE(m.size() == 5);
  CHECK(m.at("a").to_vector<float>() == a.to_vector<float>());
  CHECK(m.at("a").shape() == Shape{2, 3});
  CHECK(m.at("b").to_vector<double>() == b.to_vector<double>());
  CHECK(m.at("c").dtype() == DType::BF16);
  CHECK(m.at("c").to(DType::F32).to_vector<float>() == a.to_vector<float>());
  CHECK(m.at("d").to_vector<int32_t>() == d.to_vector<int32_t>());
  CHECK(m.at("empty").shape() == Shape{0, 4});
  std::string bytes = slurp(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(bytes[size_t(i)])) << (8 * i);
  CHECK(hlen % 8 == 0);
}

TEST_CASE("safetensors: truncated, corrupt and missing files name the file") {
  std::string path = tmp("good.safetensors");
  save_safetensors(path, {{"w", Tensor::full({4, 4}, 2.0)}});
  std::string bytes = slurp(path);
  std::string trunc = tmp("trunc.safetensors");
  std::ofstream(trunc, std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  CHECK_THROWS_WITH(load_safetensors(trunc), doctest::Contains("trunc.safetensors: not a valid safetensors file"));
  std::string shorth = tmp("short.safetensors");
  std::ofstream(shorth, std::ios::binary) << bytes.substr(0, 20);
  CHECK_THROWS_WITH(load_safetensors(shorth), doctest::Contains("short.safetensors: not a valid safetensors file"));
  std::string garbage = tmp("garbage.safetensors");
  std::string g = bytes;
  g[8] = '#';  // the header's opening brace
  std::ofstream(garbage, std::ios::binary) << g;
  CHECK_THROWS_WITH(load_safetensors(garbage), doctest::Contains("garbage.safetensors: not a valid safetensors file"));
  std::string tiny = tmp("tiny.safetensors");
  std::ofstream(tiny, std::ios::binary) << "abc";
  CHECK_THROWS_WITH(load_safetensors(tiny), doctest::Contains("tiny.safetensors"));
  CHECK_THROWS_WITH(load_safetensors(tmp("nope.safetensors")), doctest::Contains("nope.safetensors: cannot open"));
}
