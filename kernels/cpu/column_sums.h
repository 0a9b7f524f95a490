// Column sums that do not depend on the number of threads, for the CPU kernels (kernels/cpu and
// avey/kernels/cpu): the gradients of per-column parameters (a gain, a bias) summed over rows.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace kernels::cpu {

constexpr int64_t kRowBlock = 64;  // rows per partial sum

// Runs row_fn(r, partials) for every row r, where the row adds its contribution to each of
// outs.size() per-column sums into partials (outs.size() consecutive runs of cols, zeroed, one
// set per block of kRowBlock rows); then writes to outs[k] (skipping null outputs) the sums of
// the blocks' partials, in block order. Rows run in parallel, a block on one thread: the result
// depends only on the sizes and the data.
template <class T, class RowFn>
void rows_with_column_sums(int64_t rows, int64_t cols, std::vector<T*> outs, RowFn row_fn) {
  const int64_t nblocks = (rows + kRowBlock - 1) / kRowBlock;
  const int64_t nout = int64_t(outs.size());
  std::vector<T> partial(size_t(nblocks * nout * cols), T(0));
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t b = 0; b < nblocks; ++b) {
    T* p = partial.data() + b * nout * cols;
    for (int64_t r = b * kRowBlock; r < std::min(rows, (b + 1) * kRowBlock); ++r) row_fn(r, p);
  }
#pragma omp parallel for schedule(static) if (nblocks * nout * cols > 65536)
  for (int64_t kc = 0; kc < nout * cols; ++kc) {
    const int64_t k = kc / cols, c = kc % cols;
    if (!outs[size_t(k)]) continue;
    T s = T(0);
    for (int64_t b = 0; b < nblocks; ++b) s += partial[size_t((b * nout + k) * cols + c)];
    outs[size_t(k)][c] = s;
  }
}

}  // namespace kernels::cpu
