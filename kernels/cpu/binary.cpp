// a (op) b with b broadcast as kernels::Broadcast says, and the reduction that undoes a
// broadcast in backward (the gradient of a bias is the sum of its rows' gradients).
#include "kernels/instantiate.h"
#include "kernels/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * cols;
    T* yr = y + r * cols;
    switch (bc) {
      case Broadcast::None:
        for (int64_t c = 0; c < cols; ++c) yr[c] = apply(op, ar[c], b[r * cols + c]);
        break;
      case Broadcast::Row:
        for (int64_t c = 0; c < cols; ++c) yr[c] = apply(op, ar[c], b[c]);
        break;
      case Broadcast::Column:
        for (int64_t c = 0; c < cols; ++c) yr[c] = apply(op, ar[c], b[r]);
        break;
      case Broadcast::Scalar:
        for (int64_t c = 0; c < cols; ++c) yr[c] = apply(op, ar[c], b[0]);
        break;
    }
  }
}

template <class T> void reduce_to(Broadcast bc, int64_t rows, int64_t cols, const T* g, T* gb) {
  switch (bc) {
    case Broadcast::None:
      for (int64_t i = 0; i < rows * cols; ++i) gb[i] = g[i];
      break;
    case Broadcast::Row:  // column sums, accumulated in row order (deterministic)
      for (int64_t c = 0; c < cols; ++c) gb[c] = T(0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) gb[c] += g[r * cols + c];
      break;
    case Broadcast::Column:
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
      for (int64_t r = 0; r < rows; ++r) {
        T s = T(0);
        for (int64_t c = 0; c < cols; ++c) s += g[r * cols + c];
        gb[r] = s;
      }
      break;
    case Broadcast::Scalar: {
      T s = T(0);
      for (int64_t i = 0; i < rows * cols; ++i) s += g[i];
      gb[0] = s;
      break;
    }
  }
}

template <class T> void scale(int64_t n, double s, const T* x, T* y) {
  const T k = T(s);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = k * x[i];
}

template <class T> void add_scalar(int64_t n, double s, const T* x, T* y) {
  const T k = T(s);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + k;
}

template <class T>
void mul_pair(int64_t rows, int64_t cols, const T* g, int64_t ldg, const T* a, const T* b, T* ya, T* yb) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const T gv = g[r * ldg + c];
      ya[r * cols + c] = gv * a[r * cols + c];
      yb[r * cols + c] = gv * b[r * cols + c];
    }
}

AVEY_INSTANTIATE_CPU(binary)
AVEY_INSTANTIATE_CPU(mul_pair)
AVEY_INSTANTIATE_CPU(reduce_to)
AVEY_INSTANTIATE_CPU(scale)
AVEY_INSTANTIATE_CPU(add_scalar)

}  // namespace kernels::cpu
