// Avey-B's fine-tuning heads (avey/heads.h has the math).
#include "avey/heads.h"

#include <fmt/format.h>

namespace avey {

using namespace engine;

Tensor linear(const Tensor& x, const Linear& l) { return add(matmul(x, l.w, false, true), l.b); }

Tensor mean_pool(const Tensor& out) {
  if (out.ndim() != 3 || out.size(1) < 1) fail("mean_pool", "expected out [B, T, d] with T >= 1, got " + out.describe());
  // (1/T) 1^T out[b]: one [1, T] row of 1/T times each sequence's [T, d] rows
  const int64_t B = out.size(0), T = out.size(1), d = out.size(2);
  const Tensor avg = Tensor::full({1, T}, 1.0 / double(T), out.dtype(), out.device());
  return reshape(matmul(avg, out), {B, d});
}

Tensor sequence_head(const Tensor& pooled, const SequenceHead& h) {
  const Tensor x1 = gelu(linear(pooled, h.dense0));
  const Tensor x2 = gelu(linear(x1, h.dense2));
  return linear(linear(x2, h.dense4), h.classifier);
}

Tensor token_head(const Tensor& rows, const TokenHead& h) { return linear(tanh(linear(rows, h.dense0)), h.classifier); }

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  if (prediction.shape() != target.shape())
    fail("mse_loss", "prediction " + prediction.describe() + " and target " + target.describe() + " differ in shape");
  return mean(square(sub(prediction, target)));
}

Tensor bce_with_logits(const Tensor& x, const Tensor& y) {
  if (x.shape() != y.shape()) fail("bce_with_logits", "logits " + x.describe() + " and target " + y.describe() + " differ in shape");
  // softplus(x) - x y with softplus(x) = relu(x) + log(1 + exp(-|x|)): exp never sees a positive argument
  const Tensor abs_x = add(relu(x), relu(scale(x, -1.0)));
  const Tensor softplus = add(relu(x), log(add_scalar(exp(scale(abs_x, -1.0)), 1.0)));
  return mean(sub(softplus, mul(x, y)));
}

Tensor sequence_loss(const Tensor& logits, const Tensor& targets) {
  const int64_t B = logits.size(0), labels = logits.size(1);
  if (labels == 1) {  // regression: MSELoss()(logits.squeeze(), labels.squeeze())
    if (!is_floating(targets.dtype()) || targets.numel() != B)
      fail("sequence_loss", "one label (regression) needs float targets [B], got " + targets.describe());
    return mse_loss(reshape(logits, {B}), reshape(targets.to(logits.dtype()), {B}));
  }
  if (targets.dtype() == DType::I32) return cross_entropy(logits, targets);
  if (targets.shape() != logits.shape())
    fail("sequence_loss", fmt::format("float targets are multi-labels [B, {}], got {}", labels, targets.describe()));
  return bce_with_logits(logits, targets.to(logits.dtype()));
}

}  // namespace avey
