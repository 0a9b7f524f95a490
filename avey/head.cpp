#include "avey/head.h"

#include <algorithm>

#include "engine/dispatch.h"

namespace avey {

using namespace engine;

Tensor tied_head_loss_composed(const Tensor& h, const Tensor& embedding, const Tensor& targets) {
  return cross_entropy(matmul(h, embedding, false, true), targets);
}

namespace {

DType loss_dtype(const Tensor& h) { return h.dtype() == DType::F64 ? DType::F64 : DType::F32; }

// One chunk of logits in the loss dtype.
Tensor chunk_logits(const Tensor& h, const Tensor& embedding, int64_t r0, int64_t r1) {
  const int64_t d = h.size(1);
  Tensor logits = matmul(h.view(r0 * d, {r1 - r0, d}), embedding, false, true);
  return logits.dtype() == loss_dtype(h) ? logits : logits.to(loss_dtype(h));
}

}  // namespace

Tensor tied_head_loss(const Tensor& h, const Tensor& embedding, const Tensor& targets, int64_t chunk_elements) {
  const std::string op = "tied_head_loss";
  if (h.ndim() != 2 || embedding.ndim() != 2 || h.size(1) != embedding.size(1))
    fail(op, "expected h [N, d] and E [V, d], got " + h.describe() + " and " + embedding.describe());
  if (targets.dtype() != DType::I32 || targets.numel() != h.size(0))
    fail(op, "targets must be i32 with one per row of h, got " + targets.describe());
  const int64_t N = h.size(0), V = embedding.size(0);
  const int64_t chunk = std::max<int64_t>(1, chunk_elements / std::max<int64_t>(V, 1));
  std::vector<int32_t> t_host = targets.to(Device::CPU).to_vector<int32_t>();
  int64_t counted = 0;
  for (int32_t t : t_host) {
    if (t == -100) continue;
    if (t < 0 || t >= V) fail(op, "target " + std::to_string(t) + " outside the vocabulary of " + std::to_string(V));
    ++counted;
  }
  const DType ld = loss_dtype(h);
  const bool grad = needs_grad({h, embedding});
  Tensor rows_loss = Tensor::empty({N}, ld, h.device());
  Tensor gh, ge;  // d(loss)/dh and d(loss)/dE for gL = 1, accumulated chunk by chunk
  Tensor loss;
  {
    NoGrad no_grad;
    Tensor one = Tensor::full({1}, 1.0, ld, h.device());
    if (grad && h.requires_grad()) gh = Tensor::empty(h.shape(), h.dtype(), h.device());
    // d(loss)/dE sums over every chunk: in fp32 when E is bf16 (each chunk's product is rounded once).
    if (grad && embedding.requires_grad()) ge = Tensor::zeros(embedding.shape(), ld, embedding.device());
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk), rows = r1 - r0, d = h.size(1);
      Tensor logits = chunk_logits(h, embedding, r0, r1);
      Tensor lse = Tensor::empty({rows}, ld, h.device());
      Tensor loss_c = rows_loss.view(r0, {rows}), t_c = targets.view(r0, {rows});
      AVEY_DISPATCH(op, logits, cross_entropy, rows, V, logits.data<T>(), t_c.data<int32_t>(), -100,
                    loss_c.data<T>(), lse.data<T>());
      if (!grad || counted == 0) continue;
      // dlogits = (softmax - onehot) / M
      Tensor glogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
      AVEY_DISPATCH(op, logits, cross_entropy_backward, rows, V, logits.data<T>(), t_c.data<int32_t>(), -100,
                    lse.data<T>(), one.data<T>(), 1.0 / double(counted), glogits.data<T>());
      logits = Tensor();  // free the chunk's logits before the two products
      if (glogits.dtype() != h.dtype()) glogits = glogits.to(h.dtype());
      if (gh.defined()) gh.view(r0 * d, {rows, d}).copy_(matmul(glogits, embedding));
      if (ge.defined()) add_(ge, matmul(glogits, h.view(r0 * d, {rows, d}), true, false));
    }
    loss = scale(sum(rows_loss), counted ? 1.0 / double(counted) : 0.0);
  }
  if (counted == 0) {  // nothing counted: the loss is 0 and so are its gradients
    if (gh.defined()) gh.fill_(0.0);
  }
  record(loss, "avey.tied_head_loss", {h, embedding}, [gh, ge](const Tensor& gl) -> std::vector<Tensor> {
    // scale the precomputed gradients by dL/d(loss) (1 in training: skip the multiply then)
    auto scaled = [&gl](const Tensor& g) -> Tensor {
      if (!g.defined()) return g;
      if (gl.numel() == 1 && gl.item() == 1.0) return g;
      return mul(g, gl.dtype() == g.dtype() ? gl : gl.to(g.dtype()));
    };
    return {scaled(gh), scaled(ge)};
  });
  return loss;
}

}  // namespace avey
