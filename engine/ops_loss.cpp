// Cross-entropy over the last dim with a fused log-softmax (kernels/cpu/loss.cpp).
//
// L = (1/N) sum over counted rows r of (lse_r - z_r[t_r]),  lse_r = logsumexp(z_r),
// N = number of rows whose target is not ignore_index (L = 0 when N = 0: no NaN).
// dL/dz_r = (1/N) (softmax(z_r) - onehot(t_r)) for counted rows, 0 for ignored ones;
// the backward kernel reads dL/dL_out from device memory (no host sync) and scales by 1/N.
// Saves the logits, targets and lse (one per row).
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  const std::string op = "cross_entropy";
  check_floating(op, logits);
  check_same_device(op, logits, targets);
  if (targets.dtype() != DType::I32) fail(op, "targets must be i32, got " + targets.describe());
  if (logits.ndim() < 1 || logits.size(-1) == 0) fail(op, "logits need a vocabulary dim, got " + logits.describe());
  if (Shape(logits.shape().begin(), logits.shape().end() - 1) != targets.shape())
    fail(op, "targets " + targets.describe() + " must have the leading shape of logits " + logits.describe());
  const int64_t vocab = logits.size(-1), rows = targets.numel();

  // Count the rows that take part (and check the targets); targets are small, read on the host.
  Tensor t_host = targets.to(Device::CPU);
  const int32_t* t = t_host.data<int32_t>();
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (t[r] == ignore_index) continue;
    if (t[r] < 0 || t[r] >= vocab)
      fail(op, fmt::format("target {} at row {} is outside the vocabulary of {} ({})", t[r], r, vocab,
                           logits.describe()));
    ++counted;
  }
  const double inv_n = counted ? 1.0 / double(counted) : 0.0;

  Tensor loss_rows = Tensor::empty({rows}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({rows}, logits.dtype(), logits.device());
  AVEY_DISPATCH(op, logits, cross_entropy, rows, vocab, logits.data<T>(), targets.data<int32_t>(), ignore_index,
                loss_rows.data<T>(), lse.data<T>());
  Tensor total = Tensor::empty({1}, logits.dtype(), logits.device());
  AVEY_DISPATCH(op, logits, sum_all, rows, loss_rows.data<T>(), total.data<T>());
  Tensor out = Tensor::empty({1}, logits.dtype(), logits.device());
  AVEY_DISPATCH(op, logits, scale, 1, inv_n, total.data<T>(), out.data<T>());

  record(out, op, {logits}, [rows, vocab, logits, targets, ignore_index, lse, inv_n](const Tensor& g)
                                -> std::vector<Tensor> {
    Tensor gl = Tensor::empty(logits.shape(), g.dtype(), g.device());
    AVEY_DISPATCH("cross_entropy", g, cross_entropy_backward, rows, vocab, logits.data<T>(), targets.data<int32_t>(),
                  ignore_index, lse.data<T>(), g.data<T>(), inv_n, gl.data<T>());
    return {gl};
  });
  return out;
}

}  // namespace engine
