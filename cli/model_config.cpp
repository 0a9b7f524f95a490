#include "cli/model_config.h"

#include "cli/json_fields.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& key, const std::string& why) {
  throw std::invalid_argument(fmt::format("{}: key '{}': {}", what, key, why));
}

// model_type "avey": the decoder of rimads/avey-dpa (the key table in model_config.h).
ModelSpec read_avey(const nlohmann::json& j, const std::string& what) {
  ModelSpec spec;
  avey::Config& c = spec.config;
  auto integer = [&](const char* key, int64_t fallback, int64_t min) {
    return j.contains(key) ? json_int(j[key], key, what, min) : fallback;
  };
  c.vocab_size = integer("vocab_size", 50304, 1);
  c.d_embed = integer("d_embed", 768, 1);
  c.n_layers = integer("n_blocks", 26, 0);
  c.expansion_factor = integer("expansion_factor", 4, 1);
  c.split_size = integer("chunk_size", 64, 1);
  c.top_k = integer("k", 8, 1) - 1;
  c.tail_proportion = j.contains("context_proportion") ? json_real(j["context_proportion"], "context_proportion", what) : 0.5;
  if (!(c.tail_proportion > 0 && c.tail_proportion <= 1))
    bad(what, "context_proportion", fmt::format("must be in (0, 1], got {}", c.tail_proportion));
  c.ranker_weight_norm = "first";
  c.validate(what);
  if (j.contains("extended_len") && json_int(j["extended_len"], "extended_len", what) != c.context_rows())
    bad(what, "extended_len", fmt::format("{} is not k * chunk_size = {}", j["extended_len"].dump(), c.context_rows()));
  if (j.contains("avey_tokenizer")) spec.tokenizer = json_string(j["avey_tokenizer"], "avey_tokenizer", what);
  return spec;
}

// The model types a reference folder may hold, by config.json's "model_type". A second model
// type (Avey-B, the encoder: model_type "avey-b", docs/model.md section 2) plugs in here with a
// reader of its keys.
struct ModelType {
  const char* name;
  ModelSpec (*read)(const nlohmann::json& config, const std::string& what);
};
const ModelType kModelTypes[] = {{"avey", read_avey}};

}  // namespace

ModelSpec parse_model_config(const std::string& text, const std::string& what) {
  const nlohmann::json j = parse_json_object(text, what);
  if (!j.contains("model_type")) return ModelSpec{"avey", avey::Config::from_json(j, what), "", false};
  const std::string type = json_string(j["model_type"], "model_type", what);
  std::string known;
  for (const ModelType& t : kModelTypes) {
    if (type == t.name) {
      ModelSpec spec = t.read(j, what);
      spec.model_type = type;
      spec.reference = true;
      return spec;
    }
    known += (known.empty() ? "" : ", ") + std::string(t.name);
  }
  bad(what, "model_type", fmt::format("'{}' is not a model type this build reads ({})", type, known));
}

ModelSpec read_model_config(const std::string& path) { return parse_model_config(read_text_file(path), path); }

nlohmann::ordered_json to_reference_config(const ModelSpec& spec) {
  if (spec.model_type != "avey") throw std::invalid_argument("no reference format for model_type '" + spec.model_type + "'");
  const avey::Config& c = spec.config;
  const avey::Config plain;  // the defaults: the paper's model, which the reference computes
  const std::vector<std::pair<std::string, bool>> computable = {
      // with one retrieved split (or none), "max" and "first" name the same score
      {"ranker_weight_norm 'first' (the reference normalises by the earliest selected split)",
       c.ranker_weight_norm == "first" || c.top_k <= 1},
      {"enricher_activation 'relu2'", c.enricher_activation == plain.enricher_activation},
      {"contextualizer_activation 'none'", c.contextualizer_activation == plain.contextualizer_activation},
      {"dynamic, split_weighting and ranker all true", c.dynamic && c.split_weighting && c.ranker},
      {"norm 'rmsnorm'", c.norm == plain.norm},
      {"contextualizer 'avey'", c.contextualizer == plain.contextualizer},
  };
  for (const auto& [needs, ok] : computable)
    if (!ok) throw std::invalid_argument("the reference's code computes only models with " + needs + ": this one differs");
  nlohmann::ordered_json j;
  j["architectures"] = {"Avey"};
  j["model_type"] = "avey";
  j["vocab_size"] = c.vocab_size;
  j["d_embed"] = c.d_embed;
  j["n_blocks"] = c.n_layers;
  j["expansion_factor"] = c.expansion_factor;
  j["chunk_size"] = c.split_size;
  j["k"] = c.context_splits();
  j["context_proportion"] = c.tail_proportion;
  j["extended_len"] = c.context_rows();
  j["torch_dtype"] = "float32";
  if (!spec.tokenizer.empty()) j["avey_tokenizer"] = spec.tokenizer;
  return j;
}
