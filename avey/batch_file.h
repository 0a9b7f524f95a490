// A batch of token ids as JSON, the format `avey grads` and the PyTorch reference share:
//   {"input_ids": [[...], ...], "labels": [[...], ...]}     (B rows of T ids; label -100 = ignore)
#pragma once
#include <string>

#include "engine/tensor.h"

namespace avey {

struct TokenBatch {
  engine::Tensor input_ids, labels;  // i32 [B, T] on the CPU
};

// Throws one clear line naming the file for a missing key, ragged rows or non-integer ids.
TokenBatch read_batch_json(const std::string& path);

}  // namespace avey
