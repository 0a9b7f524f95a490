#include "avey/head.h"

#include <algorithm>

#include "engine/fused_ops.h"

namespace avey {

using namespace engine;

Tensor tied_head_loss_composed(const Tensor& h, const Tensor& embedding, const Tensor& targets) {
  return cross_entropy(matmul(h, embedding, false, true), targets);
}

namespace {

DType loss_dtype(const Tensor& h) { return h.dtype() == DType::F64 ? DType::F64 : DType::F32; }

}  // namespace

Tensor tied_head_loss(const Tensor& h, const Tensor& embedding, const Tensor& targets, int64_t chunk_elements) {
  const std::string op = "tied_head_loss";
  if (h.ndim() != 2 || embedding.ndim() != 2 || h.size(1) != embedding.size(1))
    fail(op, "expected h [N, d] and E [V, d], got " + h.describe() + " and " + embedding.describe());
  if (targets.dtype() != DType::I32 || targets.numel() != h.size(0))
    fail(op, "targets must be i32 with one per row of h, got " + targets.describe());
  const int64_t N = h.size(0), V = embedding.size(0);
  // Mixed precision on the GPU: cross-entropy straight on the bf16 logits (fp32 inside), see below.
  // That path keeps one 2-byte chunk alive where the other keeps ~10 bytes a logit (logits and
  // their gradient in the loss dtype): it takes 16x the logits a chunk (512 MB at the default),
  // for fewer, larger products and fewer passes of dE's fp32 read-modify-write (8 bytes per
  // element of E a chunk). The rows are shared evenly between the chunks.
  const bool gpu_bf16 = h.is_cuda() && h.dtype() == DType::BF16 && embedding.dtype() == DType::BF16;
  const int64_t max_rows = std::max<int64_t>(1, (gpu_bf16 ? 16 : 1) * chunk_elements / std::max<int64_t>(V, 1));
  const int64_t chunks = std::max<int64_t>(1, (N + max_rows - 1) / max_rows), chunk = (N + chunks - 1) / chunks;
  std::vector<int32_t> t_host = targets.to(Device::CPU).to_vector<int32_t>();
  const Tensor t_dev = targets.to(h.device());
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
    if (grad && h.requires_grad()) gh = Tensor::empty(h.shape(), h.dtype(), h.device());
    // d(loss)/dE sums over every chunk (in fp32 when E is bf16): the first chunk's product writes
    // it (beta = 0), the later ones add to it.
    if (grad && embedding.requires_grad()) ge = Tensor::empty(embedding.shape(), ld, embedding.device());
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk), rows = r1 - r0, d = h.size(1);
      if (gpu_bf16) {  // one kernel on the bf16 logits; the gradient overwrites them
        Tensor logits = matmul(h.view(r0 * d, {rows, d}), embedding, false, true);
        const bool g = grad && counted > 0;
        cross_entropy_rows_bf16(logits, t_dev.view(r0, {rows}), -100, rows_loss.view(r0, {rows}),
                                g ? 1.0 / double(counted) : 0.0);
        if (!g) continue;
        if (gh.defined()) gh.view(r0 * d, {rows, d}).copy_(matmul(logits, embedding));
        // dE (+)= dlogits^T h, accumulated by the product in fp32
        if (ge.defined()) matmul_f32_out(logits, h.view(r0 * d, {rows, d}), ge, true, false, r0 == 0 ? 0.0 : 1.0);
        continue;
      }
      Tensor logits = matmul(h.view(r0 * d, {rows, d}), embedding, false, true);  // f32 or f64: the loss dtype
      const Tensor t_c = t_dev.view(r0, {rows});
      const Tensor lse = cross_entropy_rows(logits, t_c, -100, rows_loss.view(r0, {rows}));
      if (!grad || counted == 0) continue;
      const Tensor glogits = cross_entropy_rows_backward(logits, t_c, -100, lse, 1.0 / double(counted));  // (softmax - onehot) / M
      logits = Tensor();  // free the chunk's logits before the two products
      if (gh.defined()) matmul_into({glogits}, {embedding}, {gh, r0 * d}, 1, rows, d, V, false, false, 0.0);
      if (ge.defined()) matmul_into({glogits}, {h, r0 * d}, {ge}, 1, V, d, rows, true, false, r0 == 0 ? 0.0 : 1.0);
    }
    loss = scale(sum(rows_loss), counted ? 1.0 / double(counted) : 0.0);
  }
  if (counted == 0) {  // nothing counted: the loss is 0 and so are its gradients
    if (gh.defined()) gh.fill_(0.0);
    if (ge.defined()) ge.fill_(0.0);
  }
  record(loss, "avey.tied_head_loss", {h, embedding}, [gh, ge](const Tensor& gl) -> std::vector<Tensor> {
    // scale the precomputed gradients by dL/d(loss) (backward()'s own seed 1 in training: skip the
    // multiply then, without reading the seed back from the device)
    auto scaled = [&gl](const Tensor& g) -> Tensor {
      if (!g.defined() || gl.impl()->unit_seed) return g;
      return mul(g, gl.dtype() == g.dtype() ? gl : gl.to(g.dtype()));
    };
    return {scaled(gh), scaled(ge)};
  });
  return loss;
}

}  // namespace avey
