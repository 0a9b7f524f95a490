// Gradient accumulation to a token batch size (docs/model.md: 0.5M-token batches).
//
// One optimizer step sees tokens_per_step tokens, as `steps` micro-batches of B sequences of T
// tokens each: steps = tokens_per_step / (B * T), which must divide exactly.
//
// Where the 1/steps goes: each micro-batch's loss is the mean over its B*T tokens; the training
// loop multiplies it by loss_scale = 1/steps before backward (engine::scale(loss, loss_scale)),
// and parameter gradients accumulate (+=) into the flat gradient buffer, zeroed once per
// optimizer step. After the last micro-batch the buffer holds the gradient of the mean loss
// over all tokens_per_step tokens, the same as one big batch; the global norm, the clipping and
// AdamW then see that gradient. The reported loss is the mean of the unscaled micro-batch losses.
#pragma once
#include <cstdint>

namespace optim {

struct GradAccum {
  int64_t steps = 1;        // micro-batches per optimizer step
  double loss_scale = 1.0;  // 1 / steps, applied to each micro-batch's mean loss
};

// Throws std::invalid_argument (naming the nearest valid token counts) when tokens_per_step is
// not a positive multiple of batch_size * seq_len, or any argument is <= 0.
GradAccum grad_accum(int64_t tokens_per_step, int64_t batch_size, int64_t seq_len);

}  // namespace optim
