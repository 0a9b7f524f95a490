// The enricher's element-wise end on the CPU: bias, activation and column split in one pass over
// each row (and back: the parts' gradients times act' in one pass, with the bias's gradient as
// column sums in blocks of rows); z0's row norm through l2norm_rows.
#include <cmath>
#include <stdexcept>

#include "avey/kernels/kernels.h"
#include "kernels/cpu/column_sums.h"
#include "kernels/elementwise_math.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cpu {

namespace k = ::kernels::cpu;
using ::kernels::NormEps;

namespace {

// Calls fn(act) with act(x) = f(x), or the identity when !has_act, as a compile-time function.
template <class T, class Fn> void with_activation(bool has_act, Unary f, Fn&& fn) {
  if (!has_act) return fn([](T x) { return x; });
  ::kernels::with_unary(f, [&](auto F) { fn([F](T x) { return ::kernels::unary_value(F.value, x); }); });
}

// The same for act'(x) (identity: 1); `of_output` takes it from the output z = f(p) instead,
// where f is relu (z > 0) or relu2 (2 sqrt(z)).
template <class T, class Fn> void with_derivative(bool has_act, Unary f, bool of_output, Fn&& fn) {
  if (!has_act) return fn([](T) { return T(1); });
  if (of_output) {
    if (f == Unary::Relu) return fn([](T z) { return T(z > T(0)); });
    if (f == Unary::Relu2) return fn([](T z) { return T(2) * std::sqrt(z); });
    throw std::invalid_argument("act_grad_concat: needs p for this activation");
  }
  ::kernels::with_unary(f, [&](auto F) { fn([F](T x) { return ::kernels::unary_derivative(F.value, x); }); });
}

// out[c] = f(x[c]) for c < w, and out[c] = g[c] f(x[c]): plain loops over arguments passed by
// value, so that the compiler vectorises them.
template <class T, class F> void map_into(int64_t w, F f, const T* __restrict x, T* __restrict out) {
  for (int64_t c = 0; c < w; ++c) out[c] = f(x[c]);
}
template <class T, class F> void scaled_map_into(int64_t w, const T* __restrict g, F f, const T* __restrict x, T* __restrict out) {
  for (int64_t c = 0; c < w; ++c) out[c] = g[c] * f(x[c]);
}

}  // namespace

template <class T> void bias_act_split(const BiasActSplit<T>& a) {
  // keep_p is not read: p always keeps the pre-activation here
  const auto& [rows, cols, p, bias, has_act, f, w0, w1, z0, z1, z2, ld2, keep_p, zn, denom, eps] = a;
  const int64_t w2 = cols - w0 - w1;
  with_activation<T>(has_act, f, [&](auto act) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      T* pr = p + r * cols;
      for (int64_t c = 0; c < cols; ++c) pr[c] += bias[c];
      map_into(w0, act, pr, z0 + r * w0);
      if (w1 > 0) map_into(w1, act, pr + w0, z1 + r * w1);
      if (w2 > 0) map_into(w2, act, pr + w0 + w1, z2 + r * ld2);
    }
  });
  if (zn) k::l2norm_rows(NormEps::Inside, rows, w0, z0, eps, zn, denom);
}

template <class T> void act_grad_concat(const ActGradConcat<T>& a) {
  const auto& [rows, cols, p, z0, z1, z2, ld2, has_act, f, w0, w1, g0, g1, g2, gp, gbias] = a;
  const int64_t w2 = cols - w0 - w1;
  // gp's row r = act'(.) [g0 | g1 | g2] at row r; the bias's partial column sums beside it
  with_derivative<T>(has_act, f, p == nullptr, [&](auto grad) {
    auto row = [&](int64_t r, T* partial) {
      T* out = gp + r * cols;
      // columns [c0, c0 + w): the part's gradient g times act' of p's columns, or of the part z
      auto part = [&](int64_t c0, int64_t w, const T* g, const T* z) {
        scaled_map_into(w, g, grad, p ? p + r * cols + c0 : z, out + c0);
      };
      part(0, w0, g0 + r * w0, z0 + r * w0);
      if (w1 > 0) part(w0, w1, g1 + r * w1, z1 + r * w1);
      if (w2 > 0) part(w0 + w1, w2, g2 + r * ld2, z2 + r * ld2);
      if (partial)
        for (int64_t c = 0; c < cols; ++c) partial[c] += out[c];
    };
    if (gbias) {
      k::rows_with_column_sums<T>(rows, cols, {gbias}, row);
    } else {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
      for (int64_t r = 0; r < rows; ++r) row(r, nullptr);
    }
  });
}

AVEY_INSTANTIATE_CPU(bias_act_split)
AVEY_INSTANTIATE_CPU(act_grad_concat)

}  // namespace avey::kernels::cpu
