// Moving rows and columns: column windows (slices, concatenation), gathering rows by index
// (embedding lookup) and its deterministic scatter-add, the per-row scatter of row_max, and
// fixed linear maps of rows (map_rows: the packed contexts' gathers and sums).
#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T>
void copy_cols(int64_t rows, int64_t width, const T* src, int64_t src_cols, int64_t src_off, T* dst,
               int64_t dst_cols, int64_t dst_off, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * width > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src + r * src_cols + src_off;
    T* d = dst + r * dst_cols + dst_off;
    if (accumulate)
      for (int64_t c = 0; c < width; ++c) d[c] += s[c];
    else if (width > 0)  // an empty tensor's pointer may be null: memcpy must not see it
      std::memcpy(d, s, size_t(width) * sizeof(T));
  }
}

template <class T>
void gather_rows(int64_t n_idx, int64_t cols, const T* table, int64_t table_rows, const int32_t* idx, T* y) {
  for (int64_t i = 0; i < n_idx; ++i)  // checked before any thread starts: a clean exception
    if (idx[i] < 0 || idx[i] >= table_rows)
      throw std::out_of_range("gather_rows: index " + std::to_string(idx[i]) + " at position " + std::to_string(i) +
                              " is outside a table of " + std::to_string(table_rows) + " rows");
#pragma omp parallel for schedule(static) if (n_idx * cols > 65536)
  for (int64_t i = 0; i < n_idx; ++i)
    if (cols > 0) std::memcpy(y + i * cols, table + int64_t(idx[i]) * cols, size_t(cols) * sizeof(T));
}

// Deterministic: every table row sums its gradients in increasing position i, whatever the
// number of threads. Positions are stably sorted by index, then each distinct index (a run
// of the sorted order) is one independent task, so no two threads write the same row.
template <class T>
void scatter_add_rows(int64_t n_idx, int64_t cols, const T* g, const int32_t* idx, T* gtable, int64_t /*table_rows*/) {
  if (n_idx * cols <= 65536) {
    for (int64_t i = 0; i < n_idx; ++i) {
      T* d = gtable + int64_t(idx[i]) * cols;
      const T* s = g + i * cols;
      for (int64_t c = 0; c < cols; ++c) d[c] += s[c];
    }
    return;
  }
  std::vector<int64_t> order(static_cast<size_t>(n_idx));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [idx](int64_t a, int64_t b) { return idx[a] < idx[b]; });
  std::vector<int64_t> starts;  // where each run of equal indices begins in `order`
  for (int64_t k = 0; k < n_idx; ++k)
    if (k == 0 || idx[order[size_t(k)]] != idx[order[size_t(k - 1)]]) starts.push_back(k);
  starts.push_back(n_idx);
  const int64_t runs = int64_t(starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t u = 0; u < runs; ++u) {
    T* d = gtable + int64_t(idx[order[size_t(starts[size_t(u)])]]) * cols;
    for (int64_t k = starts[size_t(u)]; k < starts[size_t(u + 1)]; ++k) {
      const T* s = g + order[size_t(k)] * cols;
      for (int64_t c = 0; c < cols; ++c) d[c] += s[c];
    }
  }
}

template <class T> void scatter_cols(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx) {
#pragma omp parallel for schedule(static) if (rows > 65536)
  for (int64_t r = 0; r < rows; ++r) gx[r * cols + idx[r]] += gy[r];
}

template <class T>
void map_rows(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (out_rows * cols > 65536)
  for (int64_t r = 0; r < out_rows; ++r) {
    T* d = y + r * cols;
    std::fill(d, d + cols, T(0));
    for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      const T* s = x + int64_t(src[k]) * cols;
      for (int64_t c = 0; c < cols; ++c) d[c] += s[c];
    }
  }
}

AVEY_INSTANTIATE_CPU(copy_cols)
AVEY_INSTANTIATE_CPU(gather_rows)
AVEY_INSTANTIATE_CPU(scatter_add_rows)
AVEY_INSTANTIATE_CPU(scatter_cols)
AVEY_INSTANTIATE_CPU(map_rows)

}  // namespace kernels::cpu
