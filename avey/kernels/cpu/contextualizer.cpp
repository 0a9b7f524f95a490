// The contextualizer's weighted triangles on the CPU. sym_weighted walks each matrix in square
// tiles below the diagonal, writing a tile and then its mirror image from it (the transposed read
// stays in the cache); tril_product_column_sums gives each row of the result to one OpenMP iteration,
// which adds the batch's rows in order (the same result for any number of threads).
#include <algorithm>

#include "avey/kernels/kernels.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cpu {

template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S) {
  constexpr int64_t kTile = 32;
  const int64_t tiles = (C + kTile - 1) / kTile;
  // One iteration per (matrix, row of tiles I): tiles (I, J < I) and their mirrors (J, I), then
  // the diagonal tile. X[i, j] = G[i, j] W[i, j] (j <= i); S[i, j] = S[j, i] = X[i, j] off the
  // diagonal, S[i, i] = 2 X[i, i].
#pragma omp parallel for schedule(dynamic) if (batch * C * C > 65536)
  for (int64_t bt = 0; bt < batch * tiles; ++bt) {
    const T* g = G + bt / tiles * C * C;
    T* s = S + bt / tiles * C * C;
    const int64_t i0 = bt % tiles * kTile, i1 = std::min(C, i0 + kTile);
    for (int64_t j0 = 0; j0 < i0; j0 += kTile) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j0 + kTile; ++j) s[i * C + j] = g[i * C + j] * W[i * C + j];
      for (int64_t j = j0; j < j0 + kTile; ++j)  // the mirror, from the tile just written (in the cache)
        for (int64_t i = i0; i < i1; ++i) s[j * C + i] = s[i * C + j];
    }
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = i0; j < i1; ++j) {
        const int64_t r = std::max(i, j), c = std::min(i, j);  // the lower triangle's element
        s[i * C + j] = (i == j ? T(2) : T(1)) * g[r * C + c] * W[r * C + c];
      }
  }
}

template <class T> void tril_product_column_sums(int64_t batch, int64_t C, const T* a, const T* b, T* out) {
#pragma omp parallel for schedule(dynamic, 8) if (batch * C * C > 65536)
  for (int64_t i = 0; i < C; ++i) {
    T* o = out + i * C;
    std::fill(o, o + C, T(0));
    for (int64_t n = 0; n < batch; ++n) {
      const T* an = a + (n * C + i) * C;
      const T* bn = b + (n * C + i) * C;
      for (int64_t j = 0; j <= i; ++j) o[j] += an[j] * bn[j];
    }
  }
}

AVEY_INSTANTIATE_CPU(sym_weighted)
AVEY_INSTANTIATE_CPU(tril_product_column_sums)

}  // namespace avey::kernels::cpu
