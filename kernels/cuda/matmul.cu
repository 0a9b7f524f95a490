// Matrix products through cuBLAS, a tiled transpose, and the tiled symmetric sum sym_weighted.
//
// cuBLAS is column-major; our matrices are row-major. A row-major M x N matrix C has the same
// bytes as the column-major N x M matrix C^T, and C = op(A) op(B) is C^T = op(B)^T op(A)^T. So
// we ask cuBLAS for the column-major product op(B)^T op(A)^T with m = N, n = M: the B buffer
// is passed first, each transpose flag stays as given (a row-major buffer read column-major
// is already transposed), and the leading dimensions are the row-major row lengths.
//
// One strided-batched call covers the whole batch (a stride of 0 shares an operand). Both
// types accumulate in fp32 (CUBLAS_COMPUTE_32F); for f32 that is true fp32, not TF32, so the
// result matches the CPU to rounding. bf16 inputs and output, fp32 inside.
#include <cublas_v2.h>

#include <climits>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace kernels::cuda {

namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(what, cublasGetStatusString(s), __FILE__, __LINE__);
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created;
    check_cublas(cublasCreate(&created), "cublasCreate");
    check_cublas(cublasSetStream(created, stream()), "cublasSetStream");
    // Default math with CUBLAS_COMPUTE_32F: f32 stays fp32 (TF32 would need CUBLAS_TF32_TENSOR_OP_MATH).
    check_cublas(cublasSetMathMode(created, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    return created;
  }();
  return h;
}

template <class T> constexpr cudaDataType_t cuda_type() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

void check_int(int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX) fail("matmul", (std::string(name) + " does not fit cuBLAS's int").c_str(), __FILE__, __LINE__);
}

}  // namespace

template <class T>
void matmul(const T* A, const T* B, T* C, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
            double alpha, double beta, int64_t strideA, int64_t strideB, int64_t strideC) {
  if (batch == 0 || M == 0 || N == 0) return;
  check_int(M, "M");
  check_int(N, "N");
  check_int(K, "K");
  check_int(batch, "batch");
  const float a = float(alpha), b = float(beta);
  const int lda = int(ta ? M : K), ldb = int(tb ? K : N);  // row lengths of the row-major buffers
  check_cublas(cublasGemmStridedBatchedEx(handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          int(N), int(M), int(K), &a, B, cuda_type<T>(), ldb < 1 ? 1 : ldb, strideB,
                                          A, cuda_type<T>(), lda < 1 ? 1 : lda, strideA, &b, C, cuda_type<T>(),
                                          int(N), strideC, int(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

void matmul_bf16_f32(const bf16* A, const bf16* B, float* C, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                     double beta) {
  if (M == 0 || N == 0) return;
  check_int(M, "M");
  check_int(N, "N");
  check_int(K, "K");
  const float a = 1.f, b = float(beta);
  const int lda = int(ta ? M : K), ldb = int(tb ? K : N);
  check_cublas(cublasGemmEx(handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M),
                            int(K), &a, B, CUDA_R_16BF, ldb < 1 ? 1 : ldb, A, CUDA_R_16BF, lda < 1 ? 1 : lda, &b, C,
                            CUDA_R_32F, int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

// Transpose through a 32 x 33 shared tile (the +1 avoids bank conflicts): a block reads a tile
// with coalesced rows of x and writes it with coalesced rows of y. blockIdx.z walks the batch.
template <class T>
__global__ void transpose_kernel(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y) {
  __shared__ float tile[32][33];
  const int64_t c0 = int64_t(blockIdx.x) * 32, r0 = int64_t(blockIdx.y) * 32;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* xb = x + b * rows * cols;
    T* yb = y + b * rows * cols;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
      int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[i][threadIdx.x] = load(xb, r * cols + c);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
      int64_t c = c0 + i, r = r0 + threadIdx.x;  // y is cols x rows
      if (r < rows && c < cols) store(yb, c * rows + r, tile[threadIdx.x][i]);
    }
    __syncthreads();
  }
}

template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y) {
  if (batch == 0 || rows == 0 || cols == 0) return;
  if ((rows + 31) / 32 > 65535) fail("transpose", "more than 2M rows", __FILE__, __LINE__);
  dim3 grid(unsigned((cols + 31) / 32), unsigned((rows + 31) / 32), unsigned(batch < 65535 ? batch : 65535));
  transpose_kernel<<<grid, dim3(32, 8), 0, stream()>>>(batch, rows, cols, x, y);
  AVEY_LAUNCH_CHECK("transpose");
}

// S = G (.) W + (G (.) W)^T for each [C, C] matrix G of the batch, W one [C, C] matrix: the
// cosine matrix's gradient made symmetric, so that dZn = dCos Zn + dCos^T Zn is one product
// S Zn. One block a 32 x 32 output tile (blockIdx.x, .y) of one matrix (blockIdx.z, strided):
// it stages the mirrored tile G[tile^T] (.) W[tile^T] through shared memory (coalesced reads)
// and adds it, transposed, to the tile's own G (.) W.
template <class T>
__global__ void sym_weighted_kernel(int64_t batch, int64_t C, const T* G, const T* W, T* S) {
  __shared__ float tile[32][33];
  const int64_t c0 = int64_t(blockIdx.x) * 32, r0 = int64_t(blockIdx.y) * 32;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* g = G + b * C * C;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {  // the mirrored tile: rows c0.., columns r0..
      const int64_t r = c0 + i, c = r0 + threadIdx.x;
      if (r < C && c < C) tile[i][threadIdx.x] = load(g, r * C + c) * load(W, r * C + c);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
      const int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < C && c < C)
        store(S + b * C * C, r * C + c, load(g, r * C + c) * load(W, r * C + c) + tile[threadIdx.x][i]);
    }
    __syncthreads();
  }
}

template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S) {
  if (batch == 0 || C == 0) return;
  if ((C + 31) / 32 > 65535) fail("sym_weighted", "more than 2M rows", __FILE__, __LINE__);
  const unsigned t = unsigned((C + 31) / 32);
  sym_weighted_kernel<<<dim3(t, t, unsigned(batch < 65535 ? batch : 65535)), dim3(32, 8), 0, stream()>>>(batch, C, G,
                                                                                                        W, S);
  AVEY_LAUNCH_CHECK("sym_weighted");
}

#define INSTANTIATE(T)                                                                                           \
  template void matmul<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, bool, bool, double, double, \
                          int64_t, int64_t, int64_t);                                                            \
  template void transpose<T>(int64_t, int64_t, int64_t, const T*, T*);                                          \
  template void sym_weighted<T>(int64_t, int64_t, const T*, const T*, T*);
INSTANTIATE(float)
INSTANTIATE(bf16)
#undef INSTANTIATE

}  // namespace kernels::cuda
