// Matrix products through Eigen (which blocks for the cache and vectorises), batched over
// OpenMP threads when there are many small products, else threaded inside each product.
#include <Eigen/Core>

#include "kernels/cpu/kernels.h"

namespace kernels::cpu {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using Map = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

// One product; lda, ldb, ldc are the row lengths of the row-major buffers (a slice of a wider
// matrix has its parent's).
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

template <class T>
void matmul(const T* A, const T* B, T* C, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
            double alpha, double beta, int64_t strideA, int64_t strideB, int64_t strideC) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (batch == 1) {  // one large product: Eigen threads it
    one_product(A, lda, B, ldb, C, N, M, N, K, ta, tb, T(alpha), T(beta));
    return;
  }
  // Many products: one per thread, each single-threaded inside.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < batch; ++i)
    one_product(A + i * strideA, lda, B + i * strideB, ldb, C + i * strideC, N, M, N, K, ta, tb, T(alpha), T(beta));
}

template <class T>
void matmul_ld(const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, int64_t M, int64_t N, int64_t K,
               bool ta, bool tb, double alpha, double beta) {
  one_product(A, lda, B, ldb, C, ldc, M, N, K, ta, tb, T(alpha), T(beta));
}

template <class T>
void matmul_residual_bias(const T* A, int64_t lda, const T* B, int64_t ldb, const T* R, const T* bias, T* D, int64_t M,
                          int64_t N, int64_t K, bool ta, bool tb) {
#pragma omp parallel for schedule(static) if (M * N > 65536)
  for (int64_t r = 0; r < M; ++r)
    for (int64_t c = 0; c < N; ++c) D[r * N + c] = R[r * N + c] + bias[c];
  one_product(A, lda, B, ldb, D, N, M, N, K, ta, tb, T(1), T(1));
}

template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (batch * rows * cols > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    Map<T>(y + b * rows * cols, cols, rows, Eigen::OuterStride<>(rows)) =
        ConstMap<T>(x + b * rows * cols, rows, cols, Eigen::OuterStride<>(cols)).transpose();
  }
}

template void matmul<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, bool, bool, double,
                            double, int64_t, int64_t, int64_t);
template void matmul<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t, bool, bool,
                             double, double, int64_t, int64_t, int64_t);
template void matmul_ld<float>(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t, int64_t,
                               bool, bool, double, double);
template void matmul_ld<double>(const double*, int64_t, const double*, int64_t, double*, int64_t, int64_t, int64_t,
                                int64_t, bool, bool, double, double);
template void matmul_residual_bias<float>(const float*, int64_t, const float*, int64_t, const float*, const float*,
                                          float*, int64_t, int64_t, int64_t, bool, bool);
template void matmul_residual_bias<double>(const double*, int64_t, const double*, int64_t, const double*,
                                           const double*, double*, int64_t, int64_t, int64_t, bool, bool);
template void transpose<float>(int64_t, int64_t, int64_t, const float*, float*);
template void transpose<double>(int64_t, int64_t, int64_t, const double*, double*);

}  // namespace kernels::cpu
