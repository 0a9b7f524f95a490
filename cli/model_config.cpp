#include "cli/model_config.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "cli/json_fields.h"

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& key, const std::string& why) {
  throw std::invalid_argument(fmt::format("{}: key '{}': {}", what, key, why));
}

// A reference config's integer key, or the default its config class takes when it is absent.
int64_t int_key(const nlohmann::json& j, const char* key, int64_t fallback, int64_t min, const std::string& what) {
  return j.contains(key) ? json_int(j[key], key, what, min) : fallback;
}

void read_tokenizer(const nlohmann::json& j, ModelSpec& spec, const std::string& what) {
  if (j.contains("avey_tokenizer")) spec.tokenizer = json_string(j["avey_tokenizer"], "avey_tokenizer", what);
}

// The keys every reference config begins with.
nlohmann::ordered_json reference_keys(const char* architecture, const avey::Config& c) {
  nlohmann::ordered_json j;
  j["architectures"] = nlohmann::ordered_json::array({architecture});
  j["model_type"] = c.model;
  j["vocab_size"] = c.vocab_size;
  j["d_embed"] = c.d_embed;
  return j;
}

// model_type "avey": the decoder of rimads/avey-dpa (the key table in model_config.h).
ModelSpec read_avey(const nlohmann::json& j, const std::string& what) {
  ModelSpec spec;
  avey::Config& c = spec.config;
  c.vocab_size = int_key(j, "vocab_size", 50304, 1, what);
  c.d_embed = int_key(j, "d_embed", 768, 1, what);
  c.n_layers = int_key(j, "n_blocks", 26, 0, what);
  c.expansion_factor = int_key(j, "expansion_factor", 4, 1, what);
  c.split_size = int_key(j, "chunk_size", 64, 1, what);
  c.top_k = int_key(j, "k", 8, 1, what) - 1;
  c.tail_proportion = j.contains("context_proportion") ? json_real(j["context_proportion"], "context_proportion", what) : 0.5;
  if (!(c.tail_proportion > 0 && c.tail_proportion <= 1))
    bad(what, "context_proportion", fmt::format("must be in (0, 1], got {}", c.tail_proportion));
  c.ranker_weight_norm = "first";
  c.validate(what);
  if (j.contains("extended_len") && json_int(j["extended_len"], "extended_len", what) != c.context_rows())
    bad(what, "extended_len", fmt::format("{} is not k * chunk_size = {}", j["extended_len"].dump(), c.context_rows()));
  read_tokenizer(j, spec, what);
  return spec;
}

nlohmann::ordered_json write_avey(const ModelSpec& spec) {
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
  nlohmann::ordered_json j = reference_keys("Avey", c);
  j["n_blocks"] = c.n_layers;
  j["expansion_factor"] = c.expansion_factor;
  j["chunk_size"] = c.split_size;
  j["k"] = c.context_splits();
  j["context_proportion"] = c.tail_proportion;
  j["extended_len"] = c.context_rows();
  return j;
}

// The reference's class for an encoder with a head (config.head), or its masked LM without one.
const char* head_architecture(const std::string& head) {
  return head == "sequence" ? "AveyForSequenceClassification" : head == "token" ? "AveyForTokenClassification" : "AveyForMaskedLM";
}

// model_type "avey-b": the encoder of rimads/avey-b (configuration_avey.py), whose k is the number
// of retrieved splits (not k + 1 as the decoder's). Its mask token is the tokenizer's; a folder
// may name it ("mask_token_id", which export writes), else it is p50k_base's <|mask|> (50281).
ModelSpec read_avey_b(const nlohmann::json& j, const std::string& what) {
  ModelSpec spec;
  avey::Config& c = spec.config;
  c.model = "avey-b";
  c.vocab_size = int_key(j, "vocab_size", 50304, 1, what);
  c.d_embed = int_key(j, "d_embed", 768, 1, what);
  c.n_layers = int_key(j, "n_layers", 26, 0, what);
  c.split_size = int_key(j, "chunk_size", 128, 1, what);
  c.top_k = int_key(j, "k", 3, 0, what);
  c.eps = j.contains("eps") ? json_real(j["eps"], "eps", what) : 1e-12;
  c.mask_id = int_key(j, "mask_token_id", c.mask_id, 0, what);
  c.seq_len = int_key(j, "max_position_embeddings", c.seq_len, 1, what);
  const std::string arch = j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                                   j["architectures"][0].is_string()
                               ? j["architectures"][0].get<std::string>()
                               : "";
  if (arch == head_architecture("sequence")) c.head = "sequence";
  if (arch == head_architecture("token")) c.head = "token";
  if (c.has_head())
    c.num_labels = int_key(j, "num_labels", j.contains("id2label") && j["id2label"].is_object() ? int64_t(j["id2label"].size()) : 2, 1, what);
  c.validate(what);
  read_tokenizer(j, spec, what);
  return spec;
}

nlohmann::ordered_json write_avey_b(const ModelSpec& spec) {
  const avey::Config& c = spec.config;
  nlohmann::ordered_json j = reference_keys(head_architecture(c.head), c);
  j["hidden_size"] = c.d_embed;
  j["n_layers"] = c.n_layers;
  j["chunk_size"] = c.split_size;
  j["k"] = c.top_k;
  j["eps"] = c.eps;
  j["max_position_embeddings"] = c.seq_len;
  j["mask_token_id"] = c.mask_id;
  if (c.has_head()) j["num_labels"] = c.num_labels;
  return j;
}

// The model types a reference folder may hold, by config.json's "model_type": the reader of its
// keys and the writer of a folder its reference reads. (An engine config's "model" names the same.)
struct ModelType {
  const char* name;
  ModelSpec (*read)(const nlohmann::json& config, const std::string& what);
  nlohmann::ordered_json (*write)(const ModelSpec& spec);
};
const ModelType kModelTypes[] = {{"avey", read_avey, write_avey}, {"avey-b", read_avey_b, write_avey_b}};

const ModelType& model_type(const std::string& name, const std::string& what) {
  std::string known;
  for (const ModelType& t : kModelTypes) {
    if (name == t.name) return t;
    known += (known.empty() ? "" : ", ") + std::string(t.name);
  }
  bad(what, "model_type", fmt::format("'{}' is not a model type this build reads ({})", name, known));
}

}  // namespace

ModelSpec parse_model_config(const std::string& text, const std::string& what) {
  const nlohmann::json j = parse_json_object(text, what);
  if (!j.contains("model_type")) {
    const avey::Config config = avey::Config::from_json(j, what);
    return ModelSpec{config, "", false};
  }
  const std::string type = json_string(j["model_type"], "model_type", what);
  ModelSpec spec = model_type(type, what).read(j, what);
  spec.reference = true;
  return spec;
}

ModelSpec read_model_config(const std::string& path) { return parse_model_config(read_text_file(path), path); }

nlohmann::ordered_json to_reference_config(const ModelSpec& spec) {
  nlohmann::ordered_json j = model_type(spec.config.model, "the model").write(spec);
  j["torch_dtype"] = "float32";
  if (!spec.tokenizer.empty()) j["avey_tokenizer"] = spec.tokenizer;
  return j;
}
