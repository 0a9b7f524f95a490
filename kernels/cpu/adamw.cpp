// The optimizer's kernels: one fused AdamW step over a flat buffer, and deterministic fp64 sums
// of squares for gradient norms. See kernels.h for the formulas.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

template <class T>
void adamw(int64_t n, T* p, const T* g, T* m, T* v, const uint8_t* decay, bf16* p_bf16, double lr, double b1,
           double b2, double eps, double wd, double bias1, double bias2, const double* grad_scale) {
  const AdamWStep<T> step(lr, b1, b2, eps, wd, bias1, bias2, grad_scale ? *grad_scale : 1.0);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T pi = step.update(p[i], g[i], m[i], v[i], decay == nullptr || decay[i]);
    p[i] = pi;
    if (p_bf16) {
      if constexpr (std::is_same_v<T, float>) p_bf16[i] = to_bf16(pi);
      else p_bf16[i] = to_bf16(float(pi));
    }
  }
}

// Sum of squares of x[0, n) in fixed-size blocks, each block summed in 8 interleaved fp64 lanes
// then the lanes and blocks in order: the result depends only on n and x, not on the threads.
template <class T> static double blocked_sum_squares(int64_t n, const T* x) {
  constexpr int64_t block = 8192;
  const int64_t nblocks = (n + block - 1) / block;
  if (nblocks == 0) return 0.0;
  std::vector<double> partial(size_t(nblocks), 0.0);
#pragma omp parallel for schedule(static) if (nblocks > 4)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t lo = b * block, hi = std::min(n, lo + block);
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
      for (int k = 0; k < 8; ++k) lane[k] += double(x[i + k]) * double(x[i + k]);
    for (int k = 0; i < hi; ++i, ++k) lane[k] += double(x[i]) * double(x[i]);
    double s = 0;
    for (double l : lane) s += l;
    partial[size_t(b)] = s;
  }
  double s = 0;
  for (double q : partial) s += q;
  return s;
}

template <class T> double sum_squares(int64_t n, const T* x) { return blocked_sum_squares(n, x); }

template <class T> void clip_norm(int64_t n, const T* x, double max_norm, double* out) {
  out[0] = std::sqrt(blocked_sum_squares(n, x));
  out[1] = clip_coefficient(out[0], max_norm);
}

template <class T>
void segment_sum_squares(int64_t nseg, const int64_t* offset, const int64_t* count, const T* x, double* out) {
  for (int64_t s = 0; s < nseg; ++s) out[s] = blocked_sum_squares(count[s], x + offset[s]);
}

#define INSTANTIATE(T)                                                                                      \
  template void adamw<T>(int64_t, T*, const T*, T*, T*, const uint8_t*, bf16*, double, double, double, double, \
                         double, double, double, const double*);                                            \
  template double sum_squares<T>(int64_t, const T*);                                                        \
  template void clip_norm<T>(int64_t, const T*, double, double*);                                           \
  template void segment_sum_squares<T>(int64_t, const int64_t*, const int64_t*, const T*, double*);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace kernels::cpu
