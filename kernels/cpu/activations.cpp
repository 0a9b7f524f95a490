// Element-wise functions (kernels::Unary) and their derivatives (the formulas, shared with the
// CUDA kernels, are in kernels/elementwise_math.h), and the lower-triangular mask. The function
// is made a compile-time constant (with_unary) so each loop is a plain vectorisable map.
#include <algorithm>
#include <cmath>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

namespace {

template <class F> inline void map(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

template <class T> void unary(Unary f, int64_t n, const T* x, T* y) {
  with_unary(f, [&](auto F) { map(n, [=](int64_t i) { y[i] = unary_value(F.value, x[i]); }); });
}

template <class T> void unary_backward(Unary f, int64_t n, const T* x, const T* gy, T* gx) {
  with_unary(f, [&](auto F) { map(n, [=](int64_t i) { gx[i] = gy[i] * unary_derivative(F.value, x[i]); }); });
}

template <class T> void tril(int64_t batch, int64_t rows, int64_t cols, int64_t diagonal, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (batch * rows * cols > 65536)
  for (int64_t br = 0; br < batch * rows; ++br) {
    const int64_t r = br % rows;
    const T* xr = x + br * cols;
    T* yr = y + br * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = c <= r + diagonal ? xr[c] : T(0);
  }
}

AVEY_INSTANTIATE_CPU(unary)
AVEY_INSTANTIATE_CPU(unary_backward)
AVEY_INSTANTIATE_CPU(tril)

}  // namespace kernels::cpu
