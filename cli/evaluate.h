// Validation loss over a fixed set of batches (the same ones every time: the loader is seeded
// and starts at its beginning), without recording gradients.
#pragma once
#include <cstdint>
#include <vector>

#include "avey/model.h"

struct EvalResult {
  double loss = 0;   // mean cross-entropy per token
  int64_t tokens = 0;
};

EvalResult evaluate(avey::Model& model, const std::vector<uint32_t>& tokens, int64_t batch_size, int64_t seq_len,
                    int64_t max_batches);
