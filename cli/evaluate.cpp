#include "cli/evaluate.h"

#include <algorithm>

#include "data/loader.h"
#include "engine/autograd.h"

EvalResult evaluate(avey::Model& model, const std::vector<uint32_t>& tokens, int64_t batch_size, int64_t seq_len,
                    int64_t max_batches) {
  engine::NoGrad no_grad;
  // Shrink the batch for a small validation set rather than fail.
  int64_t windows = (int64_t(tokens.size()) - 1) / seq_len;
  int64_t B = std::max<int64_t>(1, std::min(batch_size, windows));
  data::Loader loader(tokens, B, seq_len, /*seed=*/0);
  int64_t n = std::min(max_batches, loader.batches_per_epoch());
  const engine::Device dev = model.flat_params().device();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    data::Batch b = loader.next();
    engine::Tensor ids = engine::Tensor::from(b.inputs, {b.B, b.T}, dev);
    engine::Tensor labels = engine::Tensor::from(b.targets, {b.B, b.T}, dev);
    total += model.loss(ids, labels).item();
  }
  return {n ? total / double(n) : 0.0, n * B * seq_len};
}
