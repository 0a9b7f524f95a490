// Row-wise normalisations over the last dim: softmax, RMSNorm, LayerNorm, L2 normalisation.
// Each row x (n elements) is normalised on its own; gy = dL/dy for that row, "." a dot product
// over the row, and per-column parameters (gain g, bias b) sum their gradients over all rows.
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/fused_ops.h"
#include "engine/ops.h"

namespace engine {

namespace {

struct Rows {
  int64_t rows, cols;
};

Rows rows_of(const std::string& op, const Tensor& x) {
  check_floating(op, x);
  if (x.ndim() < 1 || x.size(-1) == 0) fail(op, "needs rows of at least one element, got " + x.describe());
  return {x.numel() / x.size(-1), x.size(-1)};
}

// A per-column parameter: 1-D, one element per column of x, same dtype and device.
void check_param(const std::string& op, const std::string& what, const Tensor& x, const Tensor& p) {
  check_same_device(op, x, p);
  check_same_dtype(op, x, p);
  if (p.ndim() != 1 || p.size(0) != x.size(-1))
    fail(op, fmt::format("{} must be [{}] (the last dim of {}), got {}", what, x.size(-1), x.describe(), p.describe()));
}

}  // namespace

// ---------------------------------------------------------------- softmax
// y = exp(x - max x) / sum exp(x - max x)
// dy_i/dx_j = y_i (d_ij - y_j)   =>   gx = y * (gy - (y . gy))
// Saves y (detached: the output's own node must not be kept alive by its backward).
Tensor softmax(const Tensor& x) {
  auto [rows, cols] = rows_of("softmax", x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  AVEY_DISPATCH("softmax", x, softmax_rows, rows, cols, x.data<T>(), y.data<T>());
  Tensor y_saved = y.detach();
  record(y, "softmax", {x}, [rows, cols, y_saved](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    AVEY_DISPATCH("softmax", g, softmax_rows_backward, rows, cols, y_saved.data<T>(), g.data<T>(), gx.data<T>());
    return {gx};
  });
  return y;
}

// ---------------------------------------------------------------- RMSNorm
// y_j = x_j r g_j,  r = (mean(x^2) + eps)^(-1/2),  dr/dx_j = -r^3 x_j / n
// gx_j = r g_j gy_j + sum_i gy_i g_i x_i * (-r^3 x_j / n)
//      = r (g_j gy_j - x_j r^2 mean(x g gy))
// gg_j = sum over rows of gy_j x_j r
// Saves x, g and r (one per row).
Tensor rmsnorm(const Tensor& x, const Tensor& gain, double eps) {
  const std::string op = "rmsnorm";
  auto [rows, cols] = rows_of(op, x);
  check_param(op, "gain", x, gain);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  AVEY_DISPATCH(op, x, rmsnorm, rows, cols, x.data<T>(), gain.data<T>(), eps, y.data<T>(), rstd.data<T>());
  record(y, op, {x, gain}, [rows, cols, x, gain, rstd](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::empty(x.shape(), g.dtype(), g.device());
    Tensor gg = Tensor::empty(gain.shape(), g.dtype(), g.device());
    AVEY_DISPATCH("rmsnorm", g, rmsnorm_backward,
                  {.rows = rows, .cols = cols, .x = x.data<T>(), .g = gain.data<T>(), .rstd = rstd.data<T>(),
                   .gy = g.data<T>(), .gx = gx.data<T>(), .gg = gg.data<T>()});
    return {x.requires_grad() ? gx : Tensor(), gain.requires_grad() ? gg : Tensor()};
  });
  return y;
}

// ---------------------------------------------------------------- LayerNorm
// xh = (x - mu) r,  r = (var(x) + eps)^(-1/2),  y = xh g + b.  With gxh = gy g:
//   dxh_i/dx_j = r (d_ij - 1/n - xh_i xh_j / n)
//   gx = r (gxh - mean(gxh) - xh mean(gxh xh))
//   gg = sum over rows of gy xh,   gb = sum over rows of gy
// An undefined bias means none. Saves x, g, and mu and r (one each per row).
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, double eps) {
  const std::string op = "layernorm";
  auto [rows, cols] = rows_of(op, x);
  check_param(op, "gain", x, gain);
  if (bias.defined()) check_param(op, "bias", x, bias);
  Tensor b = bias.defined() ? bias : Tensor::zeros(gain.shape(), x.dtype(), x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mu = Tensor::empty({rows}, x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  AVEY_DISPATCH(op, x, layernorm, rows, cols, x.data<T>(), gain.data<T>(), b.data<T>(), eps, y.data<T>(),
                mu.data<T>(), rstd.data<T>());
  record(y, op, {x, gain, bias}, [rows, cols, x, gain, bias, mu, rstd](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::empty(x.shape(), g.dtype(), g.device());
    Tensor gg = Tensor::empty(gain.shape(), g.dtype(), g.device());
    Tensor gb = Tensor::empty(gain.shape(), g.dtype(), g.device());
    AVEY_DISPATCH("layernorm", g, layernorm_backward, rows, cols, x.data<T>(), gain.data<T>(), mu.data<T>(),
                  rstd.data<T>(), g.data<T>(), gx.data<T>(), gg.data<T>(), gb.data<T>());
    return {x.requires_grad() ? gx : Tensor(), gain.requires_grad() ? gg : Tensor(),
            bias.defined() && bias.requires_grad() ? gb : Tensor()};
  });
  return y;
}

// ---------------------------------------------------------------- L2 normalisation
// y = x / d(s), s = ||x||, with d = s + eps (Outside), sqrt(s^2 + eps) (Inside), max(s, eps) (Max).
// ds/dx_j = x_j / s, so dy_i/dx_j = d_ij / d - x_i x_j d'(s) / (s d^2) and
//   gx = gy / d - x (x . gy) k,   k = d'(s) / (s d^2):
//   Outside: k = 1 / (s d^2)   (0 at s = 0, where the row stays 0)
//   Inside:  d' = s / d, so k = 1 / d^3
//   Max:     k = 1 / d^3 when s > eps (d = s), else 0 (d = eps is constant)
// Saves x and d (one per row).
Tensor l2norm_rows(const Tensor& x, double eps, NormEps mode) {
  const std::string op = "l2norm_rows";
  auto [rows, cols] = rows_of(op, x);
  if (eps < 0) fail(op, fmt::format("eps must be >= 0, got {}", eps));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor denom = Tensor::empty({rows}, x.dtype(), x.device());
  AVEY_DISPATCH(op, x, l2norm_rows, mode, rows, cols, x.data<T>(), eps, y.data<T>(), denom.data<T>());
  record(y, op, {x}, [mode, rows, cols, x, eps, denom](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::empty(x.shape(), g.dtype(), g.device());
    AVEY_DISPATCH("l2norm_rows", g, l2norm_rows_backward,
                  {.mode = mode, .rows = rows, .cols = cols, .x = x.data<T>(), .eps = eps, .denom = denom.data<T>(),
                   .gy = g.data<T>(), .gx = gx.data<T>()});
    return {gx};
  });
  return y;
}

// ---------------------------------------------------------------- L1 normalisation
// y = x / d, d = max(s, eps), s = sum_j |x_j|; ds/dx_i = sign(x_i) (0 at 0, as torch's abs), so
//   dy_j/dx_i = d_ij / d - x_j [s > eps] sign(x_i) / d^2
//   gx_i = gy_i / d - sign(x_i) [s > eps] (gy . x) / d^2
// Saves x (the backward recomputes s and d from it).
Tensor l1norm_rows(const Tensor& x, double eps) {
  const std::string op = "l1norm_rows";
  auto [rows, cols] = rows_of(op, x);
  if (!(eps > 0)) fail(op, fmt::format("eps must be > 0, got {}", eps));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor denom = Tensor::empty({rows}, x.dtype(), x.device());
  AVEY_DISPATCH(op, x, l1norm_rows, rows, cols, x.data<T>(), eps, y.data<T>(), denom.data<T>());
  record(y, op, {x}, [x, eps](const Tensor& g) -> std::vector<Tensor> { return {l1norm_rows_backward(x, eps, g)}; });
  return y;
}

}  // namespace engine
