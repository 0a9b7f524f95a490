// a (op) b with b broadcast as kernels::Broadcast says, and the reduction that undoes a
// broadcast in backward (the gradient of a bias is the sum of its rows' gradients).
#include "kernels/cpu/column_sums.h"
#include "kernels/instantiate.h"
#include "kernels/kernels.h"
#include "kernels/elementwise_math.h"

namespace kernels::cpu {

namespace {

// y[c] = a[c] (op) b[c], or a[c] (op) s: plain loops over arguments passed by value (the
// compiler vectorises them), the op a compile-time constant.
template <Binary op, class T> void apply_row(int64_t n, const T* a, const T* b, T* y) {
  for (int64_t c = 0; c < n; ++c) y[c] = apply(op, a[c], b[c]);
}
template <Binary op, class T> void apply_row(int64_t n, const T* a, T s, T* y) {
  for (int64_t c = 0; c < n; ++c) y[c] = apply(op, a[c], s);
}

}  // namespace

template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y) {
  with_binary(op, [&](auto Op) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      const T* ar = a + r * cols;
      T* yr = y + r * cols;
      switch (bc) {
        case Broadcast::None: apply_row<Op.value>(cols, ar, b + r * cols, yr); break;
        case Broadcast::Row: apply_row<Op.value>(cols, ar, b, yr); break;
        case Broadcast::Column: apply_row<Op.value>(cols, ar, b[r], yr); break;
        case Broadcast::Scalar: apply_row<Op.value>(cols, ar, b[0], yr); break;
      }
    }
  });
}

template <class T> void reduce_to(Broadcast bc, int64_t rows, int64_t cols, const T* g, T* gb) {
  switch (bc) {
    case Broadcast::None:
      for (int64_t i = 0; i < rows * cols; ++i) gb[i] = g[i];
      break;
    case Broadcast::Row:  // column sums, in blocks of rows (deterministic)
      rows_with_column_sums<T>(rows, cols, {gb}, [&](int64_t r, T* p) {
        for (int64_t c = 0; c < cols; ++c) p[c] += g[r * cols + c];
      });
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
  for (int64_t r = 0; r < rows; ++r) {
    apply_row<Binary::Mul>(cols, g + r * ldg, a + r * cols, ya + r * cols);
    apply_row<Binary::Mul>(cols, g + r * ldg, b + r * cols, yb + r * cols);
  }
}

AVEY_INSTANTIATE_CPU(binary)
AVEY_INSTANTIATE_CPU(mul_pair)
AVEY_INSTANTIATE_CPU(reduce_to)
AVEY_INSTANTIATE_CPU(scale)
AVEY_INSTANTIATE_CPU(add_scalar)

}  // namespace kernels::cpu
