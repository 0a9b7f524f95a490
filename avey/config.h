// A model's configuration: which model (the decoder "avey" or the encoder "avey-b"), sizes,
// ablation switches and a few training defaults.
//
// A Config comes from a named preset (tiny, small, medium, large: paper Appendix A; avey-b-base,
// avey-b-tiny) or from a JSON object / flat TOML file whose keys are the field names below
// (Avey-B also takes its reference's names chunk_size and k). Unknown keys, keys the model does
// not have, and bad values are errors that name the key. Derived sizes (m, mt, mh, C) follow
// docs/model.md and the PyTorch references (tests/reference/avey_ref.py, avey_b_ref.py) exactly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace avey {

// Element-wise activations the enricher and the contextualizer may use.
enum class Activation : uint8_t { None, Relu, Relu2, Gelu, Silu };
const char* name_of(Activation a);
Activation parse_activation(const std::string& s);  // throws std::invalid_argument

struct Config {
  std::string model = "avey";      // avey (the decoder) | avey-b (the encoder, docs/model.md section 2)
  int64_t vocab_size = 50304;
  int64_t d_embed = 256;
  int64_t n_layers = 4;
  int64_t split_size = 64;         // S
  int64_t top_k = 7;               // k: retrieved splits; a context holds k+1 splits
  int64_t expansion_factor = 4;    // e: m = e*d
  double tail_proportion = 0.5;    // p: share of the enriched columns that are contextualised
  std::string ranker_weight_norm = "max";  // max | first
  Activation enricher_activation = Activation::Relu2;
  Activation contextualizer_activation = Activation::None;
  bool dynamic = true;             // false: A = tril(V_l) without the cosine factor
  bool split_weighting = true;     // false: w = 1 for every selected split
  bool ranker = true;              // false: sliding window of the k previous splits
  std::string norm = "rmsnorm";    // rmsnorm | layernorm
  std::string contextualizer = "avey";  // avey | attention
  int64_t attention_head_size = 64;
  // Avey-B only: its epsilon (RMSNorm, the ranker's normalisation and weights) and the mask
  // token's id (p50k_base + <|mask|>)
  double eps = 1e-12;
  int64_t mask_id = 50281;
  // Avey-B fine-tuning (docs/model.md section 2, avey/heads.h): the head on the encoder, "" (none:
  // the MLM head), "sequence" or "token", and its number of labels (the reference's num_labels)
  std::string head;
  int64_t num_labels = 0;
  // training defaults a preset or file may carry (the trainer reads them; the model does not)
  int64_t seq_len = 512;
  int64_t batch_size = 8;
  double lr = 1e-3;
  double weight_decay = 0.1;
  int64_t seed = 11;
  // The training keys a file itself named, as written (the five above and those of
  // training_keys() below): avey train applies them over its defaults, its flags over them.
  nlohmann::json training = nlohmann::json::object();

  static Config preset(const std::string& name);  // tiny | small | medium | large | avey-b-base | avey-b-tiny
  static Config from_json(const nlohmann::json& j, const std::string& source = "config");
  nlohmann::json to_json() const;
  void validate(const std::string& source = "config") const;  // throws, naming the key

  // ---- derived sizes ----
  bool is_encoder() const { return model == "avey-b"; }
  bool has_head() const { return !head.empty(); }
  int64_t expanded_width() const { return expansion_factor * d_embed; }  // m
  int64_t tail_width() const;                                           // mt = int(p*m), +1 if odd
  int64_t head_width() const { return expanded_width() - tail_width(); }  // mh (bypass)
  int64_t half_tail() const { return tail_width() / 2; }                  // mt/2: columns of Z0, Z1, c
  int64_t fuser_in() const { return half_tail() + head_width(); }        // mt/2 + mh
  int64_t context_splits() const { return top_k + 1; }                   // K
  int64_t context_rows() const { return context_splits() * split_size; }  // C
  bool use_layernorm() const { return norm == "layernorm"; }
  bool use_attention() const { return contextualizer == "attention"; }
  int64_t param_count() const;  // from the shapes alone (the tied head adds nothing)
};

// The keys a config file may carry for avey train alone (its flags, with '_' for '-'), beyond
// seq_len, batch_size, lr, weight_decay and seed: the model ignores them, the trainer checks them.
const std::vector<std::string>& training_keys();

// The preset names, for messages.
std::string preset_names();

// A preset name, or the path of a .json or .toml file.
Config load_config(const std::string& name_or_path);
// The keys of a config as a JSON object: a file's as written, a preset's {"preset": name}
// (Config::from_json reads either). Throws for a missing file, bad JSON or TOML.
nlohmann::json config_keys(const std::string& name_or_path);

}  // namespace avey
