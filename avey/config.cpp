#include "avey/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#if __has_include(<toml++/toml.hpp>)
#include <toml++/toml.hpp>
#else
#include <toml++/toml.h>  // Debian's libtomlplusplus-dev ships the header under this name
#endif

namespace avey {

const char* name_of(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Relu2: return "relu2";
    case Activation::Gelu: return "gelu";
    case Activation::Silu: return "silu";
  }
  return "?";
}

Activation parse_activation(const std::string& s) {
  for (Activation a : {Activation::None, Activation::Relu, Activation::Relu2, Activation::Gelu, Activation::Silu})
    if (s == name_of(a)) return a;
  throw std::invalid_argument("unknown activation '" + s + "' (none, relu, relu2, gelu, silu)");
}

int64_t Config::tail_width() const {
  // the public reference's rule (docs/model.md): int(m p), truncated, then made even upwards
  int64_t mt = int64_t(tail_proportion * double(expanded_width()));
  return mt + mt % 2;
}

int64_t Config::param_count() const {
  const int64_t d = d_embed, m = expanded_width(), C = context_rows();
  if (is_encoder()) {  // docs/model.md section 2: layers alternate static (with [S, S]) and dynamic
    const int64_t dynamic = d + (m * d + m) + (3 * d * d + d) + 1, S = split_size;
    const int64_t statics = (n_layers + 1) / 2, L = num_labels;
    // heads (avey/heads.h): d -> 2d -> 2d -> d -> L, or d -> d -> L, each layer with its bias
    const int64_t head_params = head == "sequence" ? (2 * d * d + 2 * d) + (4 * d * d + 2 * d) + (2 * d * d + d) + (L * d + L)
                                : head == "token"  ? (d * d + d) + (L * d + L)
                                                   : 0;
    return vocab_size * d + S * C + statics * (dynamic + S * S) + (n_layers - statics) * dynamic + head_params;
  }
  const int64_t norm_params = use_layernorm() ? 2 * d : d;
  int64_t block = norm_params + (m * d + m) + fuser_in() * d + d;
  if (!use_attention()) block += C * C;
  return vocab_size * d + n_layers * block + norm_params;
}

Config Config::preset(const std::string& name) {
  Config c;  // the defaults are the tiny preset's
  if (name == "tiny") {
    c.d_embed = 256, c.n_layers = 4;
  } else if (name == "small") {
    c.d_embed = 768, c.n_layers = 26;
  } else if (name == "medium") {
    c.d_embed = 768, c.n_layers = 104;
  } else if (name == "large") {
    c.d_embed = 2048, c.n_layers = 48;
  } else if (name == "avey-b-base" || name == "avey-b-tiny") {  // the encoder (docs/model.md section 2)
    c.model = "avey-b", c.vocab_size = 50368, c.split_size = 256, c.top_k = 3;
    c.d_embed = 768, c.n_layers = 30, c.seq_len = 2048, c.lr = 7e-4, c.weight_decay = 0.01;
    if (name == "avey-b-tiny") c.d_embed = 128, c.n_layers = 4, c.split_size = 64, c.seq_len = 256;
  } else {
    throw std::invalid_argument("unknown preset '" + name + "' (" + preset_names() + ")");
  }
  return c;
}

const std::vector<std::string>& training_keys() {
  static const std::vector<std::string> keys = {"max_steps",  "grad_accum", "schedule",     "warmup",     "clip",
                                                "precision",  "tokenizer",  "data",         "eval_every", "eval_batches",
                                                "sample_every", "save_every", "keep_last", "grad_stats"};
  return keys;
}

std::string preset_names() { return "tiny, small, medium, large, avey-b-base, avey-b-tiny"; }

namespace {

[[noreturn]] void bad(const std::string& source, const std::string& key, const std::string& what) {
  throw std::invalid_argument(fmt::format("{}: key '{}': {}", source, key, what));
}

int64_t get_int(const nlohmann::json& v, const std::string& src, const std::string& key, int64_t min) {
  if (!v.is_number_integer()) bad(src, key, "expected an integer, got " + v.dump());
  int64_t x = v.get<int64_t>();
  if (x < min) bad(src, key, fmt::format("must be >= {}, got {}", min, x));
  return x;
}
double get_real(const nlohmann::json& v, const std::string& src, const std::string& key) {
  if (!v.is_number()) bad(src, key, "expected a number, got " + v.dump());
  double x = v.get<double>();
  if (!std::isfinite(x)) bad(src, key, "must be finite");
  return x;
}
bool get_bool(const nlohmann::json& v, const std::string& src, const std::string& key) {
  if (!v.is_boolean()) bad(src, key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}
std::string get_choice(const nlohmann::json& v, const std::string& src, const std::string& key,
                       const std::vector<std::string>& choices) {
  std::string all;
  for (const auto& c : choices) all += (all.empty() ? "" : ", ") + c;
  if (!v.is_string()) bad(src, key, "expected a string (" + all + "), got " + v.dump());
  std::string s = v.get<std::string>();
  for (const auto& c : choices)
    if (s == c) return s;
  bad(src, key, "'" + s + "' is not one of " + all);
}
Activation get_act(const nlohmann::json& v, const std::string& src, const std::string& key) {
  return parse_activation(get_choice(v, src, key, {"none", "relu", "relu2", "gelu", "silu"}));
}

}  // namespace

Config Config::from_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) throw std::invalid_argument(src + ": expected a JSON object of config keys");
  Config c;
  // An optional "preset" key starts from a named preset; the other keys override it.
  if (j.contains("preset")) {
    const auto& p = j.at("preset");
    c = preset(get_choice(p, src, "preset", {"tiny", "small", "medium", "large", "avey-b-base", "avey-b-tiny"}));
  }
  if (j.contains("model")) c.model = get_choice(j.at("model"), src, "model", {"avey", "avey-b"});
  using Setter = std::function<void(const nlohmann::json&, const std::string&)>;
  const std::map<std::string, Setter> setters = {
      {"preset", [](const nlohmann::json&, const std::string&) {}},
      {"model", [](const nlohmann::json&, const std::string&) {}},  // read first, above
      {"vocab_size", [&](auto& v, auto& k) { c.vocab_size = get_int(v, src, k, 1); }},
      {"d_embed", [&](auto& v, auto& k) { c.d_embed = get_int(v, src, k, 1); }},
      {"n_layers", [&](auto& v, auto& k) { c.n_layers = get_int(v, src, k, 0); }},
      {"split_size", [&](auto& v, auto& k) { c.split_size = get_int(v, src, k, 1); }},
      {"top_k", [&](auto& v, auto& k) { c.top_k = get_int(v, src, k, 0); }},
      {"expansion_factor", [&](auto& v, auto& k) { c.expansion_factor = get_int(v, src, k, 1); }},
      {"tail_proportion", [&](auto& v, auto& k) { c.tail_proportion = get_real(v, src, k); }},
      {"ranker_weight_norm", [&](auto& v, auto& k) { c.ranker_weight_norm = get_choice(v, src, k, {"max", "first"}); }},
      {"enricher_activation", [&](auto& v, auto& k) { c.enricher_activation = get_act(v, src, k); }},
      {"contextualizer_activation", [&](auto& v, auto& k) { c.contextualizer_activation = get_act(v, src, k); }},
      {"dynamic", [&](auto& v, auto& k) { c.dynamic = get_bool(v, src, k); }},
      {"split_weighting", [&](auto& v, auto& k) { c.split_weighting = get_bool(v, src, k); }},
      {"ranker", [&](auto& v, auto& k) { c.ranker = get_bool(v, src, k); }},
      {"norm", [&](auto& v, auto& k) { c.norm = get_choice(v, src, k, {"rmsnorm", "layernorm"}); }},
      {"contextualizer", [&](auto& v, auto& k) { c.contextualizer = get_choice(v, src, k, {"avey", "attention"}); }},
      {"attention_head_size", [&](auto& v, auto& k) { c.attention_head_size = get_int(v, src, k, 1); }},
      {"seq_len", [&](auto& v, auto& k) { c.seq_len = get_int(v, src, k, 1); }},
      {"batch_size", [&](auto& v, auto& k) { c.batch_size = get_int(v, src, k, 1); }},
      {"lr", [&](auto& v, auto& k) { c.lr = get_real(v, src, k); }},
      {"weight_decay", [&](auto& v, auto& k) { c.weight_decay = get_real(v, src, k); }},
      {"seed", [&](auto& v, auto& k) { c.seed = get_int(v, src, k, 0); }},
      {"eps", [&](auto& v, auto& k) { c.eps = get_real(v, src, k); }},
      {"mask_id", [&](auto& v, auto& k) { c.mask_id = get_int(v, src, k, 0); }},
      {"head", [&](auto& v, auto& k) { c.head = get_choice(v, src, k, {"", "sequence", "token"}); }},
      {"num_labels", [&](auto& v, auto& k) { c.num_labels = get_int(v, src, k, 1); }},
      // Avey-B's reference names (its k counts the retrieved splits, as top_k does)
      {"chunk_size", [&](auto& v, auto& k) { c.split_size = get_int(v, src, k, 1); }},
      {"k", [&](auto& v, auto& k) { c.top_k = get_int(v, src, k, 0); }},
  };
  // The decoder's architecture switches mean nothing to Avey-B, and Avey-B's keys nothing to the decoder.
  static const std::vector<std::string> decoder_only = {
      "expansion_factor", "tail_proportion", "ranker_weight_norm", "enricher_activation", "contextualizer_activation",
      "dynamic", "split_weighting", "ranker", "norm", "contextualizer", "attention_head_size"};
  static const std::vector<std::string> encoder_only = {"eps", "mask_id", "chunk_size", "k", "head", "num_labels"};
  static const std::vector<std::string> model_training = {"seq_len", "batch_size", "lr", "weight_decay", "seed"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& trainer = training_keys();
    if (std::find(trainer.begin(), trainer.end(), it.key()) != trainer.end()) {
      c.training[it.key()] = it.value();
      continue;
    }
    if (std::find(model_training.begin(), model_training.end(), it.key()) != model_training.end())
      c.training[it.key()] = it.value();
    auto s = setters.find(it.key());
    if (s == setters.end()) bad(src, it.key(), "unknown key");
    const auto& other = c.is_encoder() ? decoder_only : encoder_only;
    if (std::find(other.begin(), other.end(), it.key()) != other.end())
      bad(src, it.key(), fmt::format("not a key of model '{}'", c.model));
    s->second(it.value(), it.key());
  }
  c.validate(src);
  return c;
}

void Config::validate(const std::string& src) const {
  if (model != "avey" && model != "avey-b") bad(src, "model", "must be 'avey' or 'avey-b'");
  // The sizes the model derives, checked before any is computed in integers: a file may claim any
  // numbers, and an int64 product past 2^63 would wrap to a small or negative allocation. In
  // double a product cannot wrap, and below 2^53 it is exact, so the integer sizes computed later
  // are these same numbers. A block holds at most C^2 + 2 m d + m + 3 d parameters.
  constexpr double kMaxElements = 9007199254740992.0;  // 2^53
  const double d = double(d_embed), m = double(expansion_factor) * d, C = (double(top_k) + 1) * double(split_size);
  const double total = double(vocab_size) * d + double(n_layers) * (C * C + 2 * m * d + m + 3 * d) + 2 * d;
  const std::pair<const char*, double> sizes[] = {
      {"expansion_factor", m}, {"split_size", C * C}, {"vocab_size", double(vocab_size) * d}, {"n_layers", total}};
  for (const auto& [key, size] : sizes)
    if (!(size < kMaxElements))
      bad(src, key, fmt::format("makes a tensor or model of {:.3g} elements (at most 2^53)", size));
  if (is_encoder()) {
    if (expansion_factor != 4 || tail_proportion != 0.5 || norm != "rmsnorm" || contextualizer != "avey")
      bad(src, "model", "avey-b has one architecture (expansion 4, RMSNorm); the decoder's switches do not apply");
    if (!(eps > 0.0)) bad(src, "eps", "must be > 0");
    if (mask_id >= vocab_size)
      bad(src, "mask_id",
          fmt::format("{} does not fit the vocabulary of {} ids (no room for the mask token)", mask_id, vocab_size));
    if (has_head() && num_labels < 1) bad(src, "num_labels", "a " + head + " head needs num_labels >= 1");
    if (!has_head() && num_labels != 0) bad(src, "num_labels", "only a model with a head (key 'head') has labels");
  } else if (has_head() || num_labels != 0) {
    bad(src, "head", "only avey-b (the encoder) takes a fine-tuning head");
  }
  if (!(tail_proportion > 0.0 && tail_proportion <= 1.0))
    bad(src, "tail_proportion", fmt::format("must be in (0, 1], got {}", tail_proportion));
  if (tail_width() < 2)
    bad(src, "tail_proportion", fmt::format("leaves a tail of {} columns (at least 2 needed)", tail_width()));
  if (tail_width() > expanded_width())
    bad(src, "tail_proportion",
        fmt::format("gives a tail of {} columns, more than the {} enriched ones (an odd m at p = 1)", tail_width(),
                    expanded_width()));
  if (lr < 0) bad(src, "lr", "must be >= 0");
  if (weight_decay < 0) bad(src, "weight_decay", "must be >= 0");
  if (use_attention() && half_tail() % attention_head_size != 0)
    bad(src, "attention_head_size",
        fmt::format("mt/2 = {} is not a multiple of the head size {}", half_tail(), attention_head_size));
}

nlohmann::json Config::to_json() const {
  if (is_encoder()) {
    nlohmann::json j{{"model", model},     {"vocab_size", vocab_size}, {"d_embed", d_embed},
                     {"n_layers", n_layers}, {"split_size", split_size}, {"top_k", top_k},
                     {"eps", eps},         {"mask_id", mask_id},       {"seq_len", seq_len},
                     {"batch_size", batch_size}, {"lr", lr},           {"weight_decay", weight_decay},
                     {"seed", seed}};
    if (has_head()) j["head"] = head, j["num_labels"] = num_labels;
    return j;
  }
  return nlohmann::json{
      {"model", model},
      {"vocab_size", vocab_size},
      {"d_embed", d_embed},
      {"n_layers", n_layers},
      {"split_size", split_size},
      {"top_k", top_k},
      {"expansion_factor", expansion_factor},
      {"tail_proportion", tail_proportion},
      {"ranker_weight_norm", ranker_weight_norm},
      {"enricher_activation", name_of(enricher_activation)},
      {"contextualizer_activation", name_of(contextualizer_activation)},
      {"dynamic", dynamic},
      {"split_weighting", split_weighting},
      {"ranker", ranker},
      {"norm", norm},
      {"contextualizer", contextualizer},
      {"attention_head_size", attention_head_size},
      {"seq_len", seq_len},
      {"batch_size", batch_size},
      {"lr", lr},
      {"weight_decay", weight_decay},
      {"seed", seed},
  };
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A flat TOML table as the equivalent JSON object (nested tables and arrays are errors).
nlohmann::json toml_to_json(const toml::table& t, const std::string& src) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, node] : t) {
    std::string key(k.str());
    if (auto v = node.as_integer()) j[key] = v->get();
    else if (auto f = node.as_floating_point()) j[key] = f->get();
    else if (auto b = node.as_boolean()) j[key] = b->get();
    else if (auto s = node.as_string()) j[key] = s->get();
    else bad(src, key, "expected a string, number or boolean (the config is a flat table)");
  }
  return j;
}

}  // namespace

nlohmann::json config_keys(const std::string& spec) {
  const bool is_json = ends_with(spec, ".json"), is_toml = ends_with(spec, ".toml");
  if (!is_json && !is_toml) {
    Config::preset(spec);  // throws for an unknown name
    return {{"preset", spec}};
  }
  std::ifstream in(spec);
  if (!in) throw std::invalid_argument("config '" + spec + "': cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (is_json) {
    try {
      return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(spec + ": invalid JSON: " + e.what());
    }
  }
  // toml++ 3.3 (Debian 12's) reaches __builtin_unreachable on some non-ASCII characters between
  // tokens (found by tests/fuzz/fuzz_config_toml): a config is ASCII, said here.
  const std::string text = ss.str();
  if (auto c = std::find_if(text.begin(), text.end(), [](unsigned char b) { return b >= 0x80; }); c != text.end())
    throw std::invalid_argument(fmt::format("{}: line {}: a non-ASCII character (TOML configs are ASCII)", spec,
                                            1 + std::count(text.begin(), c, '\n')));
  try {
    return toml_to_json(toml::parse(text, spec), spec);
  } catch (const toml::parse_error& e) {
    throw std::invalid_argument(
        fmt::format("{}: invalid TOML at line {}: {}", spec, e.source().begin.line, std::string(e.description())));
  }
}

Config load_config(const std::string& spec) {
  if (!ends_with(spec, ".json") && !ends_with(spec, ".toml")) {
    try {
      return Config::preset(spec);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("config '" + spec + "': not a preset (" + preset_names() + ") nor a .json/.toml file");
    }
  }
  return Config::from_json(config_keys(spec), spec);
}

}  // namespace avey
