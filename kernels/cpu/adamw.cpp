// The optimizer's kernels: one fused AdamW step over a flat buffer, and deterministic fp64 sums
// of squares for gradient norms. See kernels.h for the formulas.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

template <class T> void adamw(const AdamWArgs<T>& a) {
  const AdamWStep<T> step(a.lr, a.b1, a.b2, a.eps, a.wd, a.bias1, a.bias2, a.grad_scale ? *a.grad_scale : 1.0);
  T *p = a.p, *m = a.m, *v = a.v;  // locals, not the struct's fields: a plain loop, vectorised
  const T* g = a.g;
  auto run = [&](auto decayed) {  // decayed(i): whether element i decays, without a branch
#pragma omp parallel for schedule(static) if (a.n > 65536)
    for (int64_t i = 0; i < a.n; ++i) p[i] = step.update(p[i], g[i], m[i], v[i], decayed(i));
  };
  if (a.decay) run([decay = a.decay](int64_t i) { return decay[i] != 0; });
  else run([](int64_t) { return true; });
  if (a.p_bf16) convert(a.n, a.p, a.p_bf16);  // the bf16 working copy
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

AVEY_INSTANTIATE_CPU(adamw)
AVEY_INSTANTIATE_CPU(sum_squares)
AVEY_INSTANTIATE_CPU(clip_norm)
AVEY_INSTANTIATE_CPU(segment_sum_squares)

}  // namespace kernels::cpu
