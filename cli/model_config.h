// A model folder's config.json in either of its two formats, and the one place a model type is
// chosen:
//   the engine's own  (avey train writes it): the keys of avey::Config, e.g. "n_layers", "top_k";
//   the reference's   (PyTorch save_pretrained, avey export --to hf): it has "model_type", and
//                     that name picks the reader and the writer (model_types in model_config.cpp).
//
// The reference decoder's keys (model_type "avey"; rimads/avey-dpa, configuration_avey.py), with
// the defaults its config class takes for a missing key:
//   reference key        engine Config                          default
//   vocab_size           vocab_size (V)                         50304
//   d_embed              d_embed (d)                            768
//   n_blocks             n_layers (L)                           26
//   expansion_factor     expansion_factor (e)                   4
//   chunk_size           split_size (S)                         64
//   k                    top_k + 1 (K: splits in a context)     8
//   context_proportion   tail_proportion (p)                    0.5
//   extended_len         C = k * chunk_size (checked when present)
// The reference's code fixes the rest: ranker weights normalised by the earliest selected split's
// score (ranker_weight_norm "first"), and every ablation switch at its default.
//
// The reference encoder's (model_type "avey-b"; rimads/avey-b, configuration_avey.py):
//   vocab_size 50304, d_embed 768, n_layers 26, chunk_size (S) 128, k (top_k: retrieved splits) 3,
//   eps 1e-12, max_position_embeddings (the context it was trained at: seq_len), and
//   mask_token_id (the engine's mask_id; 50281, p50k_base's <|mask|>, when absent).
//   Its architectures name the head (avey/heads.h, docs/finetune.md): AveyForSequenceClassification
//   (head "sequence") or AveyForTokenClassification ("token") with num_labels (else the size of
//   id2label, else transformers' default 2); AveyForMaskedLM or AveyModel: none.
//
// Other keys (torch_dtype, transformers_version, hidden_size, id2label, ...) belong to the
// transformers library and are ignored here.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "avey/config.h"

struct ModelSpec {
  avey::Config config;    // config.model is the model type: "avey" or "avey-b"
  std::string tokenizer;  // the tokenizer the folder names ("" when it does not say)
  bool reference = false;  // read from the reference's format
};

// Parses config.json's text (`what` names it in errors): one clear line for bad JSON, an unknown
// model_type, a missing or mistyped key, or a config the engine cannot compute exactly.
ModelSpec parse_model_config(const std::string& text, const std::string& what);
ModelSpec read_model_config(const std::string& path);

// The reference's config.json for a model (what avey export --to hf writes). Throws, naming the
// setting, when the reference's code would compute something else (e.g. ranker_weight_norm "max").
nlohmann::ordered_json to_reference_config(const ModelSpec& spec);
