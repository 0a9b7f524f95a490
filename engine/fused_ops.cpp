// The fused layers' pieces (engine/fused_ops.h): argument checks, outputs, one kernel call each.
#include "engine/fused_ops.h"

#include <fmt/format.h>

#include "engine/dispatch.h"
#ifdef AVEY_HAVE_CUDA
#include "kernels/cuda/kernels.h"
#endif

namespace engine {

namespace {

void check_matrix(const std::string& op, const char* what, const Tensor& t, int64_t rows, int64_t cols) {
  if (!t.defined() || t.numel() != rows * cols || (t.ndim() > 0 && t.size(-1) != cols))
    fail(op, fmt::format("{} must be [{}, {}], got {}", what, rows, cols, t.defined() ? t.describe() : "none"));
}

}  // namespace

Tensor copy_of(const Columns& c) {
  if (c.begin == 0 && c.width == c.stride()) return c.t;
  const int64_t rows = c.rows();
  Tensor y = Tensor::empty({rows, c.width}, c.t.dtype(), c.t.device());
  AVEY_DISPATCH("copy_cols", y, copy_cols, rows, c.width, c.t.data<T>(), c.stride(), c.begin, y.data<T>(), c.width, 0,
                false);
  return y;
}

namespace {
void write_window(const Tensor& x, const Columns& c, bool accumulate) {
  const int64_t rows = c.rows();
  check_matrix("copy_into", "the source", x, rows, c.width);
  AVEY_DISPATCH("copy_cols", x, copy_cols, rows, c.width, x.data<T>(), c.width, 0, c.data<T>(), c.stride(), 0,
                accumulate);
}
}  // namespace

void copy_into(const Tensor& x, const Columns& c) { write_window(x, c, false); }
void add_into(const Tensor& x, const Columns& c) { write_window(x, c, true); }

RmsNormRows rmsnorm_rows(const Tensor& x, const Tensor& gain, double eps) {
  const int64_t d = x.size(-1), rows = x.numel() / d;
  check_matrix("rmsnorm_rows", "gain", gain, 1, d);
  RmsNormRows r{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({rows}, x.dtype(), x.device())};
  AVEY_DISPATCH("rmsnorm", x, rmsnorm, rows, d, x.data<T>(), gain.data<T>(), eps, r.y.data<T>(), r.rstd.data<T>());
  return r;
}

RmsNormGrads rmsnorm_rows_backward(const Tensor& x, const Tensor& gain, const Tensor& rstd, const Tensor& gy,
                                   const Tensor& gres, bool want_res_sum) {
  const int64_t d = x.size(-1), rows = x.numel() / d;
  check_same_shape("rmsnorm_rows_backward", x, gy);
  if (gres.defined()) check_same_shape("rmsnorm_rows_backward", x, gres);
  RmsNormGrads r{Tensor::empty(x.shape(), gy.dtype(), gy.device()), Tensor::empty(gain.shape(), gy.dtype(), gy.device()),
                 Tensor()};
  if (want_res_sum) r.gres_sum = Tensor::empty({d}, gy.dtype(), gy.device());
  AVEY_DISPATCH("rmsnorm", gy, rmsnorm_backward,
                {.rows = rows, .cols = d, .x = x.data<T>(), .g = gain.data<T>(), .rstd = rstd.data<T>(),
                 .gy = gy.data<T>(), .gres = gres.defined() ? gres.data<T>() : nullptr, .gx = r.gx.data<T>(),
                 .gg = r.gg.data<T>(), .gres_sum = want_res_sum ? r.gres_sum.data<T>() : nullptr});
  return r;
}

Tensor linear_residual(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual) {
  const int64_t in = x.size(-1), rows = x.numel() / in, cols = w.size(0);
  check_matrix("linear_residual", "weight", w, cols, in);
  check_matrix("linear_residual", "bias", bias, 1, cols);
  check_matrix("linear_residual", "residual", residual, rows, cols);
  Tensor out = Tensor::empty(residual.shape(), x.dtype(), x.device());
  AVEY_DISPATCH(profile::matmul_label(x.dtype(), 1, rows, cols, in, false, true) + " +res", out, linear_residual,
                {.x = x.data<T>(), .w = w.data<T>(), .bias = bias.data<T>(), .residual = residual.data<T>(),
                 .out = out.data<T>(), .rows = rows, .in = in, .cols = cols});
  return out;
}

void matmul_into(const MatrixBatch& a, const MatrixBatch& b, const MatrixBatch& c, int64_t batch, int64_t m, int64_t n,
                 int64_t k, bool ta, bool tb, double beta, kernels::Triangle triangle) {
  check_same_device("matmul_into", a.t, b.t);
  check_same_device("matmul_into", a.t, c.t);
  auto fits = [](const MatrixBatch& x, int64_t rows, int64_t cols, int64_t batch) {
    return x.offset >= 0 && x.stride >= 0 && x.offset + (batch - 1) * x.stride + rows * cols <= x.t.numel();
  };
  if (batch > 0 && (!fits(a, m, k, batch) || !fits(b, k, n, batch) || !fits(c, m, n, batch)))
    fail("matmul_into", fmt::format("a batch of {} products {} x {} x {} does not fit its operands", batch, m, k, n));
  const bool square = triangle == kernels::Triangle::LowerC ? m == n : m == k;
  if (triangle != kernels::Triangle::None && !square)
    fail("matmul_into", fmt::format("a triangular product {} x {} x {} is not square", m, k, n));
  Tensor out = c.t;
  AVEY_DISPATCH(profile::matmul_label(out.dtype(), batch, m, n, k, ta, tb), out, matmul,
                {.a = a.t.data<T>() + a.offset, .b = b.t.data<T>() + b.offset, .c = out.data<T>() + c.offset, .m = m,
                 .n = n, .k = k, .ta = ta, .tb = tb, .beta = beta, .batch = batch, .stride_a = a.stride,
                 .stride_b = b.stride, .stride_c = c.stride, .triangle = triangle});
}

Tensor unary_backward(kernels::Unary f, const Tensor& x, const Tensor& gy) {
  check_same_shape("unary_backward", x, gy);
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  AVEY_DISPATCH("unary_backward", x, unary_backward, f, x.numel(), x.data<T>(), gy.data<T>(), gx.data<T>());
  return gx;
}

ProductPair mul_pair(const Columns& g, const Tensor& a, const Tensor& b) {
  const int64_t rows = g.rows();
  check_matrix("mul_pair", "a", a, rows, g.width);
  check_same_shape("mul_pair", a, b);
  ProductPair r{Tensor::empty(a.shape(), a.dtype(), a.device()), Tensor::empty(a.shape(), a.dtype(), a.device())};
  AVEY_DISPATCH("binary", a, mul_pair, rows, g.width, g.data<T>(), g.stride(), a.data<T>(), b.data<T>(), r.ya.data<T>(),
                r.yb.data<T>());
  return r;
}

Tensor l2norm_rows_backward(kernels::NormEps mode, const Tensor& x, double eps, const Tensor& gy, const Tensor& extra,
                            const RowMap* map, int64_t summed_rows) {
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  check_matrix("l2norm_rows_backward", "the gradient", gy, map ? map->in_rows : rows, cols);
  if (extra.defined()) check_same_shape("l2norm_rows_backward", gy, extra);
  if (map && map->out_rows != rows)
    fail("l2norm_rows_backward", fmt::format("the row map gives {} rows, x has {}", map->out_rows, rows));
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  AVEY_DISPATCH("l2norm_rows_backward", x, l2norm_rows_backward,
                {.mode = mode, .rows = rows, .cols = cols, .x = x.data<T>(), .eps = eps, .gy = gy.data<T>(),
                 .gx = gx.data<T>(), .ptr = map ? map->ptr.data<int32_t>() : nullptr,
                 .src = map ? map->src.data<int32_t>() : nullptr, .extra = extra.defined() ? extra.data<T>() : nullptr,
                 .summed_rows = summed_rows});
  return gx;
}

Tensor row_argmax(const Tensor& x) {
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor best = Tensor::empty({rows}, x.dtype(), x.device()), at = Tensor::empty({rows}, DType::I32, x.device());
  AVEY_DISPATCH("row_max", x, row_max, rows, cols, x.data<T>(), best.data<T>(), at.data<int32_t>());
  return at;
}

Tensor l1norm_rows_backward(const Tensor& x, double eps, const Tensor& gy) {
  check_same_shape("l1norm_rows_backward", x, gy);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor gx = Tensor::empty(x.shape(), gy.dtype(), gy.device());
  AVEY_DISPATCH("l1norm_rows_backward", gy, l1norm_rows_backward, rows, cols, x.data<T>(), eps, gy.data<T>(),
                gx.data<T>());
  return gx;
}

Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets, int32_t ignore, Tensor loss) {
  const int64_t vocab = logits.size(-1), rows = logits.numel() / vocab;
  check_matrix("cross_entropy_rows", "the targets", targets, 1, rows);
  check_matrix("cross_entropy_rows", "the loss", loss, 1, rows);
  Tensor lse = Tensor::empty({rows}, logits.dtype(), logits.device());
  AVEY_DISPATCH("cross_entropy", logits, cross_entropy, rows, vocab, logits.data<T>(), targets.data<int32_t>(), ignore,
                loss.data<T>(), lse.data<T>());
  return lse;
}

Tensor cross_entropy_rows_backward(const Tensor& logits, const Tensor& targets, int32_t ignore, const Tensor& lse,
                                   double scale) {
  const int64_t vocab = logits.size(-1), rows = logits.numel() / vocab;
  const Tensor one = Tensor::full({1}, 1.0, logits.dtype(), logits.device());
  Tensor g = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  AVEY_DISPATCH("cross_entropy", logits, cross_entropy_backward, rows, vocab, logits.data<T>(),
                targets.data<int32_t>(), ignore, lse.data<T>(), one.data<T>(), scale, g.data<T>());
  return g;
}

namespace {
void require_gpu_bf16(const std::string& op, const Tensor& t) {
  if (!t.is_cuda() || t.dtype() != DType::BF16) fail(op, "is the GPU's bf16 path, got " + t.describe());
}
}  // namespace

void cross_entropy_rows_bf16(Tensor logits, const Tensor& targets, int32_t ignore, Tensor loss,
                             double grad_scale) {
  const std::string op = "cross_entropy_rows_bf16";
  require_gpu_bf16(op, logits);
  const int64_t vocab = logits.size(-1), rows = logits.numel() / vocab;
  check_matrix(op, "the targets", targets, 1, rows);
  if (loss.dtype() != DType::F32) fail(op, "the loss must be f32, got " + loss.describe());
#ifdef AVEY_HAVE_CUDA
  profile::Scope prof("cross_entropy", Device::CUDA);
  kernels::cuda::cross_entropy_bf16(rows, vocab, logits.data<kernels::bf16>(), targets.data<int32_t>(), ignore,
                                    loss.data<float>(), grad_scale);
#else
  (void)ignore, (void)grad_scale;
#endif
}

void matmul_f32_out(const Tensor& a, const Tensor& b, Tensor c, bool ta, bool tb, double beta) {
  const std::string op = "matmul_f32_out";
  require_gpu_bf16(op, a);
  require_gpu_bf16(op, b);
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1), N = tb ? b.size(0) : b.size(1);
  if (c.dtype() != DType::F32 || c.numel() != M * N || (tb ? b.size(1) : b.size(0)) != K)
    fail(op, fmt::format("{} x {} into {} do not fit", a.describe(), b.describe(), c.describe()));
#ifdef AVEY_HAVE_CUDA
  profile::Scope prof(profile::matmul_label(a.dtype(), 1, M, N, K, ta, tb) + " ->f32", Device::CUDA);
  kernels::cuda::matmul_bf16_f32(a.data<kernels::bf16>(), b.data<kernels::bf16>(), c.data<float>(), M, N, K, ta, tb,
                                 beta);
#else
  (void)beta;
#endif
}

}  // namespace engine
