// The contextualizer's weighted triangles on the CPU: one OpenMP iteration per row of the
// [C, C] result, the batch summed in order (the same result for any number of threads).
#include "avey/kernels/kernels.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cpu {

template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S) {
#pragma omp parallel for schedule(static) if (batch * C * C > 65536)
  for (int64_t bi = 0; bi < batch * C; ++bi) {
    const int64_t b = bi / C, i = bi % C;
    const T* g = G + b * C * C;
    T* s = S + b * C * C + i * C;
    // X[i, j] = G[i, j] W[i, j] for j <= i; S[i, j] = X[i, j] + X[j, i], one of them zero off the diagonal
    for (int64_t j = 0; j < C; ++j)
      s[j] = j < i ? g[i * C + j] * W[i * C + j] : j > i ? g[j * C + i] * W[j * C + i] : T(2) * g[i * C + i] * W[i * C + i];
  }
}

template <class T> void tril_product_column_sums(int64_t batch, int64_t C, const T* a, const T* b, T* out) {
#pragma omp parallel for schedule(static) if (batch * C * C > 65536)
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j < C; ++j) {
      T s = T(0);
      if (j <= i)
        for (int64_t n = 0; n < batch; ++n) s += a[(n * C + i) * C + j] * b[(n * C + i) * C + j];
      out[i * C + j] = s;
    }
}

AVEY_INSTANTIATE_CPU(sym_weighted)
AVEY_INSTANTIATE_CPU(tril_product_column_sums)

}  // namespace avey::kernels::cpu
