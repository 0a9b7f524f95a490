// Sampling text from a model in generation mode: each new token costs one split's context
// through the blocks (Model::next_token_logits), so a whole generation is linear in its length.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "avey/model.h"
#include "engine/random.h"

struct SampleOptions {
  int64_t max_new_tokens = 64;
  double temperature = 1.0;  // 0: greedy (arg-max)
  int64_t top_k = 0;         // 0: the whole vocabulary
  double top_p = 1.0;        // nucleus: the fewest most likely ids whose probability reaches top_p (1: all)
  int32_t stop_token = -1;   // stop after emitting this id (e.g. end-of-text); -1: never
  int32_t vocab_limit = 0;   // only ids below this (the tokenizer's real vocabulary; 0: all)
};

// The next id from one position's logits (opt's temperature, top-k, top-p and vocab_limit).
int32_t pick_token(std::vector<float> logits, const SampleOptions& opt, engine::Rng& rng);

// Appends up to max_new_tokens sampled ids to `ids` and returns the new ones. on_token, when
// given, is called with each new id as it is produced (to stream text).
std::vector<int32_t> sample(avey::Model& model, std::vector<int32_t>& ids, const SampleOptions& opt, engine::Rng& rng,
                            const std::function<void(int32_t)>& on_token = nullptr);
