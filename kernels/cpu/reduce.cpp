// Reductions. Sums accumulate in a fixed order so results are reproducible run to run.
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T> void sum_all(int64_t n, const T* x, T* y) {
  // Fixed-size blocks summed in parallel, then the block sums in order: deterministic.
  const int64_t block = 4096, nblocks = (n + block - 1) / block;
  std::vector<double> partial(size_t(nblocks), 0.0);
#pragma omp parallel for schedule(static) if (nblocks > 4)
  for (int64_t b = 0; b < nblocks; ++b) {
    double s = 0;
    for (int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i) s += double(x[i]);
    partial[size_t(b)] = s;
  }
  double s = 0;
  for (double p : partial) s += p;
  y[0] = T(s);
}

template <class T> void row_sums(int64_t rows, int64_t cols, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    T s = T(0);
    for (int64_t c = 0; c < cols; ++c) s += x[r * cols + c];
    y[r] = s;
  }
}

template <class T> void row_max(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (xr[c] > xr[best]) best = c;  // strictly greater: the first maximum wins
    y[r] = xr[best];
    argmax[r] = int32_t(best);
  }
}

AVEY_INSTANTIATE_CPU(sum_all)
AVEY_INSTANTIATE_CPU(row_sums)
AVEY_INSTANTIATE_CPU(row_max)

}  // namespace kernels::cpu
