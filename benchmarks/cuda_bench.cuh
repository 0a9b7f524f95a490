// What the CUDA benchmarks (bench_gemm.cu, bench_tril_matmul.cu) share: error checks that end
// the program with one line, random bf16 inputs (never zeros: they run faster than real data),
// the median time of a launch between CUDA events, and cuBLAS's row-major strided-batched
// product (the engine's cuBLAS path before cuBLASLt, the baseline both compare with). Each
// benchmark is one translation unit, so everything here is internal to it.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <errno.h>  // program_invocation_short_name

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, cublasGetStatusString(s));
    std::exit(1);
  }
}

__global__ void fill_random_kernel(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 13, x *= 0x5bd1e995u, x ^= x >> 15;
    p[i] = __float2bfloat16((float(x & 0xFFFF) / 65535.f - 0.5f) * 0.5f);
  }
}

// n bf16 values in [-0.25, 0.25], different for each seed, in a fresh cudaMalloc buffer.
template <class T = __nv_bfloat16> T* random_bf16(size_t n, uint32_t seed, cudaStream_t s) {
  void* p;
  check(cudaMalloc(&p, n * 2), "cudaMalloc");
  fill_random_kernel<<<1024, 256, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  check(cudaGetLastError(), "fill_random");
  return static_cast<T*>(p);
}

// Median of 20 timed launches (after 3 untimed), each between two events on stream s.
float median_ms(const std::function<void()>& launch, cudaStream_t s) {
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "event");
  check(cudaEventCreate(&e1), "event");
  for (int i = 0; i < 3; ++i) launch();
  std::vector<float> t;
  for (int i = 0; i < 20; ++i) {
    check(cudaEventRecord(e0, s), "record");
    launch();
    check(cudaEventRecord(e1, s), "record");
    check(cudaEventSynchronize(e1), "sync");
    float ms;
    check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    t.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Row-major C[b] = op(A[b]) op(B[b]) + beta C[b], bf16, fp32 accumulation, as cuBLAS's
// column-major C^T = op(B)^T op(A)^T (kernels/cuda/matmul.cu explains the swap).
void cublas_gemm(cublasHandle_t h, int batch, int M, int N, int K, bool ta, bool tb, const void* A, const void* B,
                 void* C, float beta) {
  const float alpha = 1.f;
  const int lda = ta ? M : K, ldb = tb ? K : N;
  check(cublasGemmStridedBatchedEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                                   B, CUDA_R_16BF, ldb, (long long)K * N, A, CUDA_R_16BF, lda, (long long)M * K, &beta,
                                   C, CUDA_R_16BF, N, (long long)M * N, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx");
}

}  // namespace
