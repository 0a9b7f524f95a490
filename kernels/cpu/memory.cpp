// Filling, converting between element types, y += alpha * x, and the parameters' gradients
// (accumulate_grads: kernels.h).
#include <cmath>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T> static T from_double(double v) {
  if constexpr (std::is_same_v<T, bf16>) return to_bf16(float(v));
  else return T(v);
}
template <class T> static double to_double(T v) {
  if constexpr (std::is_same_v<T, bf16>) return to_float(v);
  else return double(v);
}

template <class T> void fill(int64_t n, T* y, double value) {
  const T v = from_double<T>(value);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = v;
}

template <class S, class D> void convert(int64_t n, const S* x, D* y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<D, int32_t>) y[i] = int32_t(std::lround(to_double(x[i])));
    else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bf16>) y[i] = to_bf16(x[i]);
    else y[i] = from_double<D>(to_double(x[i]));
  }
}

template <class T> void axpy(int64_t n, double alpha, const T* x, T* y) {
  const T a = T(alpha);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <class S, class D> void accumulate(int64_t n, const S* x, D* y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += D(to_double(x[i]));
}

void accumulate_grads(int count, const GradSlot* slots) {
  for (int s = 0; s < count; ++s) {
    const GradSlot& g = slots[s];
#pragma omp parallel for if (g.n > 65536)
    for (int64_t i = 0; i < g.n; ++i) {
      float v = 0.f;
      for (int k = 0; k < g.parts; ++k) {
        const float x = g.part_bf16[k] ? to_float(static_cast<const bf16*>(g.part[k])[i])
                                       : static_cast<const float*>(g.part[k])[i];
        v = k == 0 ? x : v + x;
      }
      g.dst[i] = g.replace ? v : g.dst[i] + v;
    }
  }
}

AVEY_INSTANTIATE_STORAGE(float)
AVEY_INSTANTIATE_STORAGE(double)
AVEY_INSTANTIATE_STORAGE(bf16)
AVEY_INSTANTIATE_STORAGE(int32_t)
AVEY_INSTANTIATE_CPU(axpy)
AVEY_INSTANTIATE2(accumulate, bf16, float)
AVEY_INSTANTIATE2(accumulate, float, float)
AVEY_INSTANTIATE2(accumulate, double, double)

}  // namespace kernels::cpu
