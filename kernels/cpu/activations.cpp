// Element-wise functions (kernels::Unary) and their derivatives (the formulas, shared with the
// CUDA kernels, are in kernels/elementwise_math.h), and the lower-triangular mask. The function
// is made a compile-time constant (with_unary) so each loop is a plain vectorisable map.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/kernels.h"
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

// The enricher's element-wise end: bias, activation, column split (and back), through unary();
// z0's row norm through l2norm_rows.
template <class T>
void bias_act_split(int64_t rows, int64_t cols, T* p, const T* bias, bool has_act, Unary f, int64_t w0, int64_t w1,
                    T* z0, T* z1, T* z2, int64_t ld2, bool /*keep_p: p always keeps the pre-activation here*/, T* zn,
                    T* denom, double eps) {
  const int64_t n = rows * cols, w2 = cols - w0 - w1;
  map(n, [=](int64_t i) { p[i] += bias[i % cols]; });
  std::vector<T> z(size_t(n > 0 ? n : 0));
  if (has_act) unary(f, n, p, z.data());
  else std::copy(p, p + n, z.begin());
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* zr = z.data() + r * cols;
    std::copy(zr, zr + w0, z0 + r * w0);
    std::copy(zr + w0, zr + w0 + w1, z1 + r * w1);
    if (w2 > 0) std::copy(zr + w0 + w1, zr + cols, z2 + r * ld2);
  }
  if (zn) l2norm_rows(NormEps::Inside, rows, w0, z0, eps, zn, denom);
}

template <class T>
void act_grad_concat(int64_t rows, int64_t cols, const T* p, const T* z0, const T* z1, const T* z2, int64_t ld2,
                     bool has_act, Unary f, int64_t w0, int64_t w1, const T* g0, const T* g1, const T* g2, T* gp,
                     T* gbias) {
  const int64_t n = rows * cols, w2 = cols - w0 - w1;
  // [a0 | a1 | a2] as one rows x cols matrix (a2's rows ld2 apart)
  auto concat = [&](const T* a0, const T* a1, const T* a2) {
    std::vector<T> out(size_t(n > 0 ? n : 0));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      T* o = out.data() + r * cols;
      std::copy(a0 + r * w0, a0 + (r + 1) * w0, o);
      std::copy(a1 + r * w1, a1 + (r + 1) * w1, o + w0);
      if (w2 > 0) std::copy(a2 + r * ld2, a2 + r * ld2 + w2, o + w0 + w1);
    }
    return out;
  };
  std::vector<T> g = concat(g0, g1, g2);
  if (!has_act) {
    std::copy(g.begin(), g.end(), gp);
  } else if (p) {
    unary_backward(f, n, p, g.data(), gp);
  } else {  // f' from the output z = f(p)
    if (f != Unary::Relu && f != Unary::Relu2) throw std::invalid_argument("act_grad_concat: needs p for this activation");
    std::vector<T> z = concat(z0, z1, z2);
    map(n, [&](int64_t i) { gp[i] = g[i] * (f == Unary::Relu ? T(z[i] > 0) : T(2) * std::sqrt(z[i])); });
  }
  if (gbias) {  // rows in order: the same sum every run
    std::fill(gbias, gbias + cols, T(0));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) gbias[c] += gp[r * cols + c];
  }
}

#define INSTANTIATE(T)                                                            \
  template void unary<T>(Unary, int64_t, const T*, T*);                           \
  template void unary_backward<T>(Unary, int64_t, const T*, const T*, T*);        \
  template void tril<T>(int64_t, int64_t, int64_t, int64_t, const T*, T*);                 \
  template void bias_act_split<T>(int64_t, int64_t, T*, const T*, bool, Unary, int64_t, int64_t, T*, T*, T*,     \
                                  int64_t, bool, T*, T*, double);                                         \
  template void act_grad_concat<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, int64_t, bool, Unary, \
                                   int64_t, int64_t, const T*, const T*, const T*, T*, T*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace kernels::cpu
