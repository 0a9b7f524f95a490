#include "avey/contextualizer.h"

#include <cmath>

#include "avey/activation.h"
#include "avey/contextualizer_ops.h"

namespace avey {

using namespace engine;

namespace {

void check_inputs(const std::string& op, const Tensor& z0, const Tensor& z1) {
  if (z0.ndim() != 3) fail(op, "z0 must be [N, C, h], got " + z0.describe());
  check_same_shape(op, z0, z1);
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
