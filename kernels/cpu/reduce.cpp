// Reductions. Sums accumulate in a fixed order so results are reproducible run to run.
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu/kernels.h"

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

template void sum_all<float>(int64_t, const float*, float*);
template void sum_all<double>(int64_t, const double*, double*);

}  // namespace kernels::cpu
