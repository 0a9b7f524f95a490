#include "optim/accumulate.h"

#include <stdexcept>
#include <string>

namespace optim {

GradAccum grad_accum(int64_t tokens_per_step, int64_t batch_size, int64_t seq_len) {
  auto s = [](int64_t x) { return std::to_string(x); };
  if (tokens_per_step <= 0 || batch_size <= 0 || seq_len <= 0)
    throw std::invalid_argument("grad_accum: tokens_per_step, batch size and sequence length must be > 0, got " +
                                s(tokens_per_step) + ", " + s(batch_size) + ", " + s(seq_len));
  const int64_t micro = batch_size * seq_len;
  if (tokens_per_step % micro != 0) {
    const int64_t lo = tokens_per_step / micro;
    std::string nearest = lo > 0 ? s(lo * micro) + " (" + s(lo) + " micro-batches) or " : "";
    throw std::invalid_argument("grad_accum: a batch of " + s(tokens_per_step) +
                                " tokens is not a multiple of batch size x sequence length = " + s(batch_size) + " x " +
                                s(seq_len) + " = " + s(micro) + "; nearest: " + nearest + s((lo + 1) * micro) + " (" +
                                s(lo + 1) + " micro-batches)");
  }
  GradAccum g;
  g.steps = tokens_per_step / micro;
  g.loss_scale = 1.0 / double(g.steps);
  return g;
}

}  // namespace optim
