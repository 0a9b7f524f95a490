// A training run's folder:
//   config.json         the model's config (what `--config DIR/config.json` reads back)
//   model.safetensors   the weights, named as the PyTorch reference's state_dict
//   optimizer.bin       AdamW's moments and step (optim::AdamW::save_state)
//   train_state.json    step, tokenizer, RNG and loader position, the run's settings
//   metrics.jsonl       one JSON object per step; loss.svg its plot; samples.txt
// Each file is written atomically (temp + rename) and train_state.json last, so a crash mid-save
// leaves the previous checkpoint readable: load_checkpoint checks that all parts agree on the step.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "avey/model.h"
#include "data/loader.h"
#include "optim/adamw.h"

struct TrainState {
  int64_t step = 0;                 // optimizer steps completed
  std::string tokenizer = "p50k";
  std::string rng;                  // engine::Rng::state()
  data::Loader::State loader;
  nlohmann::json settings;          // the flags the run was started with
};

void save_checkpoint(const std::string& dir, const avey::Model& model, const optim::AdamW& opt, const TrainState& st);
// Reads the weights into `model` and the moments into `opt`; returns the training state.
TrainState load_checkpoint(const std::string& dir, avey::Model& model, optim::AdamW& opt);
// For generate/eval: the config, weights and tokenizer name of a run folder (no optimizer).
struct LoadedModel {
  avey::Config config;
  std::string tokenizer;
  int64_t step = 0;
};
LoadedModel read_run_config(const std::string& dir);
void load_weights(const std::string& dir, avey::Model& model);
