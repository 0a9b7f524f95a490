// Matrix products through Eigen (which blocks for the cache and vectorises), batched over
// OpenMP threads when there are many small products, else threaded inside each product.
#include <Eigen/Core>

#include "kernels/instantiate.h"
#include "kernels/kernels.h"

namespace kernels::cpu {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using Map = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

// One product; lda, ldb, ldc are the row lengths of the row-major buffers.
template <class T>
static void one_product(const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, int64_t M, int64_t N,
                        int64_t K, bool ta, bool tb, T alpha, T beta) {
  // A stored as M x K (or K x M when transposed); likewise B.
  ConstMap<T> a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  ConstMap<T> b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  Map<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) c.setZero();
  else if (beta != T(1)) c *= beta;
  if (!ta && !tb) c.noalias() += alpha * a * b;
  else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
  else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

template <class T> void matmul(const Gemm<T>& g) {
  const int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  if (g.batch == 1) {  // one large product: Eigen threads it
    one_product(g.a, lda, g.b, ldb, g.c, g.n, g.m, g.n, g.k, g.ta, g.tb, T(g.alpha), T(g.beta));
    return;
  }
  // Many products: one per thread, each single-threaded inside.
#pragma omp parallel for schedule(static) if (g.batch * g.m * g.n * g.k > 65536)
  for (int64_t i = 0; i < g.batch; ++i)
    one_product(g.a + i * g.stride_a, lda, g.b + i * g.stride_b, ldb, g.c + i * g.stride_c, g.n, g.m, g.n, g.k, g.ta,
                g.tb, T(g.alpha), T(g.beta));
}

template <class T> void linear_residual(const LinearResidual<T>& a) {
#pragma omp parallel for schedule(static) if (a.rows * a.cols > 65536)
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t c = 0; c < a.cols; ++c) a.out[r * a.cols + c] = a.residual[r * a.cols + c] + a.bias[c];
  one_product(a.x, a.in, a.w, a.in, a.out, a.cols, a.rows, a.cols, a.in, false, true, T(1), T(1));
}

template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (batch * rows * cols > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    Map<T>(y + b * rows * cols, cols, rows, Eigen::OuterStride<>(rows)) =
        ConstMap<T>(x + b * rows * cols, rows, cols, Eigen::OuterStride<>(cols)).transpose();
  }
}

AVEY_INSTANTIATE_CPU(matmul)
AVEY_INSTANTIATE_CPU(linear_residual)
AVEY_INSTANTIATE_CPU(transpose)

}  // namespace kernels::cpu
