// Config: presets, JSON and TOML files, errors that name the key.
#include <fstream>

#include "avey/config.h"
#include "tests/testing.h"

namespace {
std::string write_file(const std::string& name, const std::string& text) {
  std::string path = std::string(AVEY_BINARY_DIR) + "/" + name;
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("avey config: presets and the example files agree") {
  avey::Config t = avey::load_config("tiny");
  CHECK(t.d_embed == 256);
  CHECK(t.n_layers == 4);
  CHECK(t.context_rows() == 512);
  CHECK(t.tail_width() == 512);
  avey::Config j = avey::load_config(std::string(AVEY_SOURCE_DIR) + "/configs/tiny.json");
  avey::Config m = avey::load_config(std::string(AVEY_SOURCE_DIR) + "/configs/tiny.toml");
  CHECK(j.to_json() == m.to_json());
  CHECK(j.param_count() == t.param_count());
  CHECK(avey::load_config("small").d_embed == 768);
  CHECK(avey::Config::from_json(t.to_json()).to_json() == t.to_json());  // round trip
}

TEST_CASE("avey config: the long-context experiment's pairs differ only in the contextualizer") {
  const std::string dir = std::string(AVEY_SOURCE_DIR) + "/configs/";
  for (const char* pair : {"niah-ablation.json|tiny", "niah-ablation-deep.json|niah-deep.json",
                           "niah-ablation-small.json|small"}) {
    const std::string s = pair, ablation_file = s.substr(0, s.find('|')), avey_name = s.substr(s.find('|') + 1);
    CAPTURE(ablation_file);
    const avey::Config a = avey::load_config(dir + ablation_file);
    avey::Config b = avey::load_config(avey_name.ends_with(".json") ? dir + avey_name : avey_name);
    CHECK(a.use_attention());
    CHECK_FALSE(a.ranker);
    b.contextualizer = a.contextualizer, b.ranker = a.ranker;
    CHECK(a.to_json() == b.to_json());
  }
  // the 8-layer model of docs/niah.md: 18,657,536 parameters, as `avey train` reported on the GPU
  CHECK(avey::load_config(dir + "niah-deep.json").param_count() == 18657536);
}

TEST_CASE("avey config: derived widths follow the reference's rounding") {
  avey::Config c;
  c.d_embed = 10, c.expansion_factor = 3, c.tail_proportion = 0.35;  // 0.35*30 = 10.5 -> 10 (truncated), even
  CHECK(c.tail_width() == 10);
  c.tail_proportion = 0.3;  // 9 -> odd -> 10
  CHECK(c.tail_width() == 10);
  CHECK(c.head_width() == 20);
  CHECK(c.fuser_in() == 25);
  c.d_embed = 16, c.expansion_factor = 4, c.tail_proportion = 0.3;  // docs/model.md's example: 19.2 -> 19 -> 20
  CHECK(c.tail_width() == 20);
}

TEST_CASE("avey config: errors name the key") {
  using nlohmann::json;
  auto err = [](const json& j) {
    try {
      avey::Config::from_json(j, "f.json");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err({{"d_embedd", 3}}).find("key 'd_embedd': unknown key") != std::string::npos);
  CHECK(err({{"d_embed", "big"}}).find("key 'd_embed': expected an integer") != std::string::npos);
  CHECK(err({{"top_k", -1}}).find("key 'top_k': must be >= 0") != std::string::npos);
  CHECK(err({{"ranker_weight_norm", "min"}}).find("key 'ranker_weight_norm': 'min' is not one of max, first") !=
        std::string::npos);
  CHECK(err({{"enricher_activation", "tanh"}}).find("key 'enricher_activation'") != std::string::npos);
  CHECK(err({{"dynamic", 1}}).find("key 'dynamic': expected true or false") != std::string::npos);
  CHECK(err({{"tail_proportion", 1.5}}).find("key 'tail_proportion'") != std::string::npos);
  CHECK(err({{"contextualizer", "attention"}, {"attention_head_size", 100}}).find("key 'attention_head_size'") !=
        std::string::npos);
  CHECK(err({{"model", "gpt"}}).find("key 'model'") != std::string::npos);
  std::string bad_toml = write_file("bad.toml", "d_embed = 8\nsplit_sise = 4\n");
  CHECK_THROWS_WITH(avey::load_config(bad_toml), doctest::Contains("key 'split_sise': unknown key"));
  std::string broken = write_file("broken.toml", "d_embed = = 8\n");
  CHECK_THROWS_WITH(avey::load_config(broken), doctest::Contains("broken.toml: invalid TOML at line 1"));
  // A combining mark between tokens sent toml++ 3.3 to __builtin_unreachable (tests/fuzz).
  std::string accent = write_file("accent.toml", "d_embed = 8\nn_layers = 2+\xcc\xbb\n");
  CHECK_THROWS_WITH(avey::load_config(accent), doctest::Contains("accent.toml: line 2: a non-ASCII character"));
  // Sizes whose product leaves int64 are one error naming the key, before any is computed.
  CHECK(err({{"vocab_size", 4611686018427387904}, {"d_embed", 4}}).find("key 'vocab_size'") != std::string::npos);
  CHECK(err({{"split_size", 4294967296}}).find("key 'split_size': makes a tensor or model of") != std::string::npos);
  CHECK(err({{"expansion_factor", 9223372036854775807}}).find("key 'expansion_factor'") != std::string::npos);
  CHECK_THROWS_WITH(avey::load_config("nano"), doctest::Contains("not a preset"));
  std::string preset = write_file("over.json", R"({"preset": "small", "n_layers": 2})");
  avey::Config o = avey::load_config(preset);
  CHECK(o.d_embed == 768);
  CHECK(o.n_layers == 2);
}
