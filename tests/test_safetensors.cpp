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

namespace {
// A safetensors file's bytes from a header (padded to 8) and data.
std::string file_of(const std::string& header, const std::string& data) {
  std::string h = header;
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
  return out + h + data;
}
}  // namespace

TEST_CASE("safetensors: float16 tensors (PyTorch's half) load as float32") {
  // 1, -2.5, 65504 (the largest half), 2^-24 (the smallest subnormal), -0, inf
  const uint16_t halves[] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000, 0x7c00};
  std::string data(reinterpret_cast<const char*>(halves), sizeof halves);
  auto m = parse_safetensors(file_of(R"({"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}})", data), "half");
  REQUIRE(m.at("h").dtype() == DType::F32);
  CHECK(m.at("h").shape() == Shape{2, 3});
  const std::vector<float> v = m.at("h").to_vector<float>();
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == -2.5f);
  CHECK(v[2] == 65504.0f);
  CHECK(v[3] == std::ldexp(1.0f, -24));
  CHECK((v[4] == 0.0f && std::signbit(v[4])));
  CHECK(std::isinf(v[5]));
}

TEST_CASE("safetensors: headers claiming impossible shapes or offsets are one clear error") {
  auto err = [](const std::string& header, const std::string& data = std::string(16, '\0')) {
    return testing::error_of([&] { parse_safetensors(file_of(header, data), "f"); });
  };
  CHECK(err(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})") ==
        "f: not a valid safetensors file (tensor 't' has an oversized shape)");
  CHECK(err(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})") ==
        "f: not a valid safetensors file (tensor 't' has a shape that is not a list of sizes)");
  CHECK(err(R"({"t":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}})").find("not a list of sizes") != std::string::npos);
  CHECK(err(R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}})").find("is too large") !=
        std::string::npos);
  CHECK(err(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}})").find("lies outside the data") != std::string::npos);
  CHECK(err(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})").find("needs \"data_offsets\"") != std::string::npos);
  CHECK(err(R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})").find("unsupported dtype \"U8\"") != std::string::npos);
  CHECK(err(R"({"t":7})").find("tensor 't' has a malformed entry") != std::string::npos);
}

TEST_CASE("safetensors: a shard index's weight map is checked") {
  auto err = [](const std::string& text) { return testing::error_of([&] { parse_safetensors_index(text, "i.json"); }); };
  CHECK(parse_safetensors_index(R"({"metadata": {}, "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}})", "i")
            .at("b") == "m-2.safetensors");
  CHECK(err("{") == "i.json: not a valid safetensors index (not valid JSON)");
  CHECK(err(R"({"weight_map": []})") == "i.json: not a valid safetensors index (needs an object \"weight_map\": {tensor name: shard file})");
  CHECK(err(R"({"weight_map": {"a": "../x.safetensors"}})") ==
        "i.json: not a valid safetensors index (the shard '../x.safetensors' of 'a' is not a file name beside the index)");
  CHECK(err(R"({"weight_map": {"a": 3}})") == "i.json: not a valid safetensors index (the shard of 'a' is not a string)");
  CHECK(err(R"({"weight_map": {}})") == "i.json: not a valid safetensors index (the weight map is empty)");
}
