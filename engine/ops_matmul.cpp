// matmul and transpose.
//
// Forward  C = op(A) op(B)     (op = identity or transpose, per flag)
// Backward with G = dL/dC:     d op(A) = G op(B)^T,   d op(B) = op(A)^T G
//   so  dA = G op(B)^T   (or its transpose op(B) G^T when A was transposed)
//       dB = op(A)^T G   (or its transpose G^T op(A) when B was transposed)
// A 2-D operand shared by a batch receives the sum of its per-batch gradients.
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

namespace {
// Sums a [batch, ...] gradient over its first dim, for an operand that was shared by the batch.
Tensor sum_over_batch(const Tensor& g) {
  int64_t batch = g.size(0), inner = g.numel() / batch;
  Tensor out = Tensor::empty(Shape(g.shape().begin() + 1, g.shape().end()), g.dtype(), g.device());
  AVEY_DISPATCH("sum_over_batch", g, reduce_to, kernels::Broadcast::Row, batch, inner, g.data<T>(), out.data<T>());
  return out;
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::string op = "matmul";
  check_same_device(op, a, b);
  check_same_dtype(op, a, b);
  check_floating(op, a);
  if (a.ndim() < 2 || b.ndim() < 2 || b.ndim() > 3 || (a.ndim() > 3 && (ta || b.ndim() == 3)))
    fail(op, fmt::format("unsupported operands {} and {}", a.describe(), b.describe()));
  const int64_t M = ta ? a.size(-1) : a.size(-2), K = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  if (K != Kb)
    fail(op, fmt::format("inner dims differ ({} vs {}) in {}{} x {}{}", K, Kb, a.describe(), ta ? "^T" : "",
                         b.describe(), tb ? "^T" : ""));
  Tensor out;
  if (a.ndim() == 2 && b.ndim() == 2) {  // the plain product
    out = Tensor::empty({M, N}, a.dtype(), a.device());
    AVEY_DISPATCH(profile::matmul_label(a.dtype(), 1, M, N, K, ta, tb), a, matmul, {.a = a.data<T>(), .b = b.data<T>(), .c = out.data<T>(), .m = M, .n = N, .k = K,
                                  .ta = ta, .tb = tb});
  } else if (b.ndim() == 2 && !ta) {  // every row of a times one matrix: one large product
    Shape s = a.shape();
    s.back() = N;
    out = Tensor::empty(s, a.dtype(), a.device());
    int64_t rows = a.numel() / K;
    AVEY_DISPATCH(profile::matmul_label(a.dtype(), 1, rows, N, K, false, tb), a, matmul, {.a = a.data<T>(), .b = b.data<T>(), .c = out.data<T>(), .m = rows, .n = N, .k = K,
                                  .tb = tb});
  } else {  // a batch of products; a 2-D operand is shared (stride 0)
    int64_t batch = a.ndim() == 3 ? a.size(0) : b.size(0);
    if ((a.ndim() == 3 && a.size(0) != batch) || (b.ndim() == 3 && b.size(0) != batch))
      fail(op, fmt::format("batch sizes differ: {} and {}", a.describe(), b.describe()));
    out = Tensor::empty({batch, M, N}, a.dtype(), a.device());
    int64_t sa = a.ndim() == 3 ? M * K : 0, sb = b.ndim() == 3 ? K * N : 0;
    AVEY_DISPATCH(profile::matmul_label(a.dtype(), batch, M, N, K, ta, tb), a, matmul, {.a = a.data<T>(), .b = b.data<T>(), .c = out.data<T>(), .m = M, .n = N, .k = K,
                                  .ta = ta, .tb = tb, .batch = batch, .stride_a = sa, .stride_b = sb, .stride_c = M * N});
  }
  record(out, op, {a, b}, [a, b, ta, tb](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    if (a.requires_grad()) ga = ta ? matmul(b, g, tb, true) : matmul(g, b, false, !tb);
    if (b.requires_grad()) {
      if (b.ndim() == 2 && a.ndim() > 2 && !ta) {  // flatten: one product over all rows
        Tensor a2 = reshape(a, {a.numel() / a.size(-1), a.size(-1)});
        Tensor g2 = reshape(g, {g.numel() / g.size(-1), g.size(-1)});
        gb = tb ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
      } else {
        gb = tb ? matmul(g, a, true, ta) : matmul(a, g, !ta, false);
      }
    }
    if (ga.defined() && ga.ndim() > a.ndim()) ga = sum_over_batch(ga);
    if (gb.defined() && gb.ndim() > b.ndim()) gb = sum_over_batch(gb);
    return {ga, gb};
  });
  return out;
}

Tensor transpose(const Tensor& a) {
  if (a.ndim() < 2) fail("transpose", "needs at least 2 dims, got " + a.describe());
  int64_t rows = a.size(-2), cols = a.size(-1), batch = a.numel() / (rows * cols);
  Shape s = a.shape();
  std::swap(s[s.size() - 1], s[s.size() - 2]);
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  AVEY_DISPATCH("transpose", a, transpose, batch, rows, cols, a.data<T>(), out.data<T>());
  record(out, "transpose", {a}, [](const Tensor& g) -> std::vector<Tensor> { return {transpose(g)}; });
  return out;
}

}  // namespace engine
