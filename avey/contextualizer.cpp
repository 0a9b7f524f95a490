#include "avey/contextualizer.h"

#include <cmath>

#include "avey/activation.h"
#include "engine/dispatch.h"

namespace avey {

using namespace engine;

namespace {

void check_inputs(const std::string& op, const Tensor& z0, const Tensor& z1) {
  if (z0.ndim() != 3) fail(op, "z0 must be [N, C, h], got " + z0.describe());
  check_same_shape(op, z0, z1);
}

// W (.) Cos for Cos [N, C, C] and W [C, C]: W broadcast over the contexts as one row of C*C.
Tensor mul_per_context(const Tensor& cos, const Tensor& w) {
  const int64_t N = cos.size(0), C = cos.size(1);
  return reshape(mul(reshape(cos, {N, C * C}), reshape(w, {C * C})), {N, C, C});
}

}  // namespace

Tensor contextualizer_composed(const Tensor& z0, const Tensor& z1, const Tensor& spatial, bool dynamic,
                               Activation act) {
  check_inputs("contextualizer", z0, z1);
  Tensor w = tril(spatial);
  Tensor y;
  if (dynamic) {
    Tensor zn = l2norm_rows(z0, kCosineEps, NormEps::Inside);
    Tensor a = mul_per_context(matmul(zn, zn, false, true), w);
    y = matmul(a, z0);
  } else {
    y = matmul(w, z0);  // one [C, C] matrix for every context
  }
  return mul(activate(act, y), z1);
}

Tensor contextualizer(const Tensor& z0, const Tensor& z1, const Tensor& spatial, bool dynamic, Activation act) {
  check_inputs("contextualizer", z0, z1);
  const int64_t C = z0.size(1);
  if (spatial.shape() != Shape{C, C}) fail("contextualizer", "spatial_proj must be [C, C], got " + spatial.describe());
  Tensor y, cos, c;
  {
    NoGrad no_grad;
    Tensor w = tril(spatial);
    if (dynamic) {
      Tensor zn = l2norm_rows(z0, kCosineEps, NormEps::Inside);
      cos = matmul(zn, zn, false, true);
      y = matmul(mul_per_context(cos, w), z0);
    } else {
      y = matmul(w, z0);
    }
    c = mul(activate(act, y), z1);
  }
  record(c, "avey.contextualizer", {z0, z1, spatial},
         [z0, z1, spatial, dynamic, act, y, cos](const Tensor& gc) -> std::vector<Tensor> {
           const int64_t N = z0.size(0), C = z0.size(1);
           Tensor gz0, gz1, gv;
           if (z1.requires_grad()) gz1 = mul(gc, activate(act, y));
           Tensor gy = activation_grad(act, y, mul(gc, z1));
           Tensor w = tril(spatial);
           Tensor ga = matmul(gy, z0, false, true);  // dA [N, C, C]
           if (dynamic) {
             if (spatial.requires_grad())
               gv = tril(reshape(sum_rows(reshape(mul(ga, cos), {N, C * C})), {C, C}));
             if (z0.requires_grad() && z0.is_cuda()) {
               // The same, with the row normalisation's backward as one fused kernel over z0.
               const int64_t rows = N * C, h = z0.size(2);
               Tensor zn_c = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
               Tensor denom = Tensor::empty({rows}, z0.dtype(), z0.device());
               AVEY_DISPATCH("contextualizer", z0, l2norm_rows, NormEps::Inside, rows, h, z0.data<T>(), kCosineEps,
                             zn_c.data<T>(), denom.data<T>());
               gz0 = matmul(mul_per_context(cos, w), gy, true, false);
               Tensor gcos = mul_per_context(ga, w);
               Tensor gzn = add(matmul(gcos, zn_c), matmul(gcos, zn_c, true, false));
               Tensor gzn0 = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
               AVEY_DISPATCH("contextualizer", z0, l2norm_rows_backward, NormEps::Inside, rows, h, z0.data<T>(),
                             kCosineEps, denom.data<T>(), gzn.data<T>(), gzn0.data<T>());
               add_(gz0, gzn0);
             } else if (z0.requires_grad()) {
               Tensor zn = l2norm_rows(z0, kCosineEps, NormEps::Inside);
               Tensor r = rsqrt(add_scalar(sum_cols(square(z0)), kCosineEps));  // [N, C, 1]
               Tensor a = mul_per_context(cos, w);
               gz0 = matmul(a, gy, true, false);
               Tensor gcos = mul_per_context(ga, w);
               Tensor gzn = add(matmul(gcos, zn), matmul(gcos, zn, true, false));
               gz0 = add(gz0, mul(sub(gzn, mul(zn, sum_cols(mul(zn, gzn)))), r));
             }
           } else {
             if (spatial.requires_grad()) gv = tril(reshape(sum_rows(reshape(ga, {N, C * C})), {C, C}));
             if (z0.requires_grad()) gz0 = matmul(w, gy, true, false);
           }
           return {gz0, gz1, gv};
         });
  return c;
}

Tensor attention_contextualizer(const Tensor& z0, const Tensor& z1, int64_t head_size, Activation act) {
  check_inputs("attention_contextualizer", z0, z1);
  const int64_t N = z0.size(0), C = z0.size(1), h = z0.size(2);
  if (h % head_size != 0) fail("attention_contextualizer", "width " + std::to_string(h) + " is not a multiple of the head size");
  const int64_t heads = h / head_size;
  // Causal mask added to the scores: 0 on and below the diagonal, -1e30 above (exp gives exactly 0).
  std::vector<double> mask(size_t(C * C), 0.0);
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = i + 1; j < C; ++j) mask[size_t(i * C + j)] = -1e30;
  Tensor mask_t = Tensor::from(mask, {C * C}).to(z0.dtype()).to(z0.device());
  std::vector<Tensor> qs = split_cols(reshape(z0, {N * C, h}), std::vector<int64_t>(size_t(heads), head_size));
  std::vector<Tensor> outs;
  for (const Tensor& q2 : qs) {
    Tensor q = reshape(q2, {N, C, head_size});
    Tensor s = scale(matmul(q, q, false, true), 1.0 / std::sqrt(double(head_size)));
    Tensor p = softmax(reshape(add(reshape(s, {N, C * C}), mask_t), {N, C, C}));
    outs.push_back(reshape(matmul(p, q), {N * C, head_size}));
  }
  Tensor att = heads == 1 ? outs[0] : concat_cols(outs);
  return mul(activate(act, reshape(att, {N, C, h})), z1);
}

}  // namespace avey
