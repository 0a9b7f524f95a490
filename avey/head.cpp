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
  Tensor lse = Tensor::empty({N}, ld, h.device());
  Tensor rows_loss = Tensor::empty({N}, ld, h.device());
  {
    NoGrad no_grad;
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk);
      Tensor logits = chunk_logits(h, embedding, r0, r1);
      Tensor lse_c = lse.view(r0, {r1 - r0}), loss_c = rows_loss.view(r0, {r1 - r0});
      Tensor t_c = targets.view(r0, {r1 - r0});
      AVEY_DISPATCH(op, logits, cross_entropy, r1 - r0, V, logits.data<T>(), t_c.data<int32_t>(), -100,
                    loss_c.data<T>(), lse_c.data<T>());
    }
  }
  Tensor loss;
  {
    NoGrad no_grad;
    loss = scale(sum(rows_loss), counted ? 1.0 / double(counted) : 0.0);
  }
  record(loss, "avey.tied_head_loss", {h, embedding},
         [h, embedding, targets, lse, counted, chunk, N, V](const Tensor& gl) -> std::vector<Tensor> {
           const int64_t d = h.size(1);
           Tensor gh, ge;
           if (h.requires_grad()) gh = Tensor::zeros(h.shape(), h.dtype(), h.device());
           if (embedding.requires_grad()) ge = Tensor::zeros(embedding.shape(), embedding.dtype(), embedding.device());
           if (counted == 0) return {gh, ge};
           Tensor gloss = gl.dtype() == loss_dtype(h) ? gl : gl.to(loss_dtype(h));
           for (int64_t r0 = 0; r0 < N; r0 += chunk) {
             const int64_t r1 = std::min(N, r0 + chunk);
             Tensor logits = chunk_logits(h, embedding, r0, r1);  // recomputed
             Tensor glogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
             Tensor lse_c = lse.view(r0, {r1 - r0}), t_c = targets.view(r0, {r1 - r0});
             AVEY_DISPATCH("tied_head_loss", logits, cross_entropy_backward, r1 - r0, V, logits.data<T>(),
                           t_c.data<int32_t>(), -100, lse_c.data<T>(), gloss.data<T>(), 1.0 / double(counted),
                           glogits.data<T>());
             if (glogits.dtype() != h.dtype()) glogits = glogits.to(h.dtype());
             if (gh.defined()) {
               Tensor gh_c = gh.view(r0 * d, {r1 - r0, d});
               gh_c.copy_(matmul(glogits, embedding));
             }
             if (ge.defined()) add_(ge, matmul(glogits, h.view(r0 * d, {r1 - r0, d}), true, false));
           }
           return {gh, ge};
         });
  return loss;
}

}  // namespace avey
