// The enricher's element-wise end on the CPU: bias, activation and column split (and back),
// through the engine's unary kernels; z0's row norm through l2norm_rows.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "avey/kernels/kernels.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cpu {

namespace k = ::kernels::cpu;
using ::kernels::NormEps;

namespace {

template <class F> inline void map(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

template <class T> void bias_act_split(const BiasActSplit<T>& a) {
  // keep_p is not read: p always keeps the pre-activation here
  const auto& [rows, cols, p, bias, has_act, f, w0, w1, z0, z1, z2, ld2, keep_p, zn, denom, eps] = a;
  const int64_t n = rows * cols, w2 = cols - w0 - w1;
  map(n, [=](int64_t i) { p[i] += bias[i % cols]; });
  std::vector<T> z(size_t(n > 0 ? n : 0));
  if (has_act) k::unary(f, n, p, z.data());
  else std::copy(p, p + n, z.begin());
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* zr = z.data() + r * cols;
    std::copy(zr, zr + w0, z0 + r * w0);
    std::copy(zr + w0, zr + w0 + w1, z1 + r * w1);
    if (w2 > 0) std::copy(zr + w0 + w1, zr + cols, z2 + r * ld2);
  }
  if (zn) k::l2norm_rows(NormEps::Inside, rows, w0, z0, eps, zn, denom);
}

template <class T> void act_grad_concat(const ActGradConcat<T>& a) {
  const auto& [rows, cols, p, z0, z1, z2, ld2, has_act, f, w0, w1, g0, g1, g2, gp, gbias] = a;
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
    k::unary_backward(f, n, p, g.data(), gp);
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

AVEY_INSTANTIATE_CPU(bias_act_split)
AVEY_INSTANTIATE_CPU(act_grad_concat)

}  // namespace avey::kernels::cpu
