// The contextualizer's triangular products (avey/kernels/cuda/tril_matmul.cu) against what they
// replace: cuBLAS's full-square strided-batched product (cublasGemmStridedBatchedEx, the engine's
// kernels/cuda/matmul.cu path), and for the two with a fused element-wise epilogue also the
// unfused pair (that product, then the engine's element-wise multiply, kernels::cuda::binary).
//
//   bench_tril_matmul
//
// Shapes: Avey's small config (64 contexts of C = 512 rows, half width 768) and tiny (128
// contexts, 256). Times are medians of 20 launches between CUDA events on the engine's stream,
// after 3 warm-up launches, on random (not zero) inputs; L and W lower triangular.
#include <cstdio>

#include "benchmarks/cuda_bench.cuh"
#include "kernels/cuda/common.cuh"  // stream()
#include "avey/kernels/cuda/tril_matmul.h"
#include "kernels/cuda/kernels.h"

namespace {

using kernels::bf16;
namespace kc = kernels::cuda;
namespace tri = avey::kernels::cuda;

bf16* random_buffer(size_t n, uint32_t seed) { return random_bf16<bf16>(n, seed, kc::stream()); }
float median_ms(const std::function<void()>& launch) { return median_ms(launch, kc::stream()); }

cublasHandle_t g_cublas;

void gemm(int batch, int M, int N, int K, bool ta, bool tb, const bf16* A, const bf16* B, bf16* C, float beta) {
  cublas_gemm(g_cublas, batch, M, N, K, ta, tb, A, B, C, beta);
}

void print_row(const char* fn, const char* shape, float full, float unfused, float ours) {
  char unf[32] = "", vs_unf[32] = "";
  if (unfused > 0) {
    std::snprintf(unf, sizeof unf, "%.4f", unfused);
    std::snprintf(vs_unf, sizeof vs_unf, "%.2fx", unfused / ours);
  }
  std::printf("%-22s %-18s %12.4f %14s %9.4f %9.2fx %12s\n", fn, shape, full, unf, ours, full / ours, vs_unf);
}

void bench_shape(const char* config, int batch, int C, int H) {
  const size_t nCH = size_t(batch) * C * H, nCC = size_t(batch) * C * C;
  bf16 *Zn = random_buffer(nCH, 1), *Z0 = random_buffer(nCH, 2), *Z1 = random_buffer(nCH, 3),
       *dYc = random_buffer(nCH, 4), *dZ0 = random_buffer(nCH, 5), *W = random_buffer(size_t(C) * C, 6),
       *a_in = random_buffer(nCC, 7);
  kc::tril<bf16>(1, C, C, 0, W, W);
  kc::tril<bf16>(batch, C, C, 0, a_in, a_in);
  bf16 *cos = random_buffer(nCC, 8), *a = random_buffer(nCC, 9), *dA = random_buffer(nCC, 10),
       *Yc = random_buffer(nCH, 11), *c = random_buffer(nCH, 12);
  char shape[64];
  std::snprintf(shape, sizeof shape, "%s %dx%dx%d", config, batch, C, H);

  float full = median_ms([&] { gemm(batch, C, C, H, false, true, Zn, Zn, cos, 0.f); });
  float unfused = median_ms([&] {
    gemm(batch, C, C, H, false, true, Zn, Zn, cos, 0.f);
    kc::binary<bf16>(kernels::Binary::Mul, kernels::Broadcast::Row, batch, int64_t(C) * C, cos, W, a);
  });
  print_row("tril_gram (cos, a)", shape, full, unfused, median_ms([&] { tri::tril_gram(batch, C, H, Zn, {}, W, cos, a); }));

  full = median_ms([&] { gemm(batch, C, C, H, false, true, dYc, Z0, dA, 0.f); });
  print_row("tril_nt (dA)", shape, full, 0, median_ms([&] { tri::tril_nt(batch, C, H, dYc, {}, Z0, {}, dA); }));

  full = median_ms([&] { gemm(batch, C, H, C, false, false, a_in, Z0, Yc, 0.f); });
  unfused = median_ms([&] {
    gemm(batch, C, H, C, false, false, a_in, Z0, Yc, 0.f);
    kc::binary<bf16>(kernels::Binary::Mul, kernels::Broadcast::None, 1, int64_t(nCH), Yc, Z1, c);
  });
  print_row("tril_lower_mm (Yc, c)", shape, full, unfused,
            median_ms([&] { tri::tril_lower_mm(batch, C, H, a_in, Z0, {}, Yc, Z1, c, H, {}); }));
  print_row("tril_lower_mm (Yc)", shape, full, 0,
            median_ms([&] { tri::tril_lower_mm(batch, C, H, a_in, Z0, {}, Yc, nullptr, nullptr, H, {}); }));

  full = median_ms([&] { gemm(batch, C, H, C, true, false, a_in, dYc, dZ0, 1.f); });
  print_row("tril_upper_t_mm", shape, full, 0,
            median_ms([&] { tri::tril_upper_t_mm(batch, C, H, a_in, dYc, {}, dZ0); }));

  for (bf16* p : {Zn, Z0, Z1, dYc, dZ0, W, a_in, cos, a, dA, Yc, c}) cudaFree(p);
}

}  // namespace

int main() {
  check(cublasCreate(&g_cublas), "cublasCreate");
  check(cublasSetStream(g_cublas, kc::stream()), "cublasSetStream");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "props");
  std::printf("bench_tril_matmul on %s (median of 20, ms; speed-ups of ours against each)\n", prop.name);
  std::printf("%-22s %-18s %12s %14s %9s %10s %12s\n", "function", "shape", "cuBLAS full", "full + mul", "ours",
              "vs full", "vs full+mul");
  bench_shape("small", 64, 512, 768);
  bench_shape("tiny", 128, 512, 256);
  check(cudaDeviceSynchronize(), "sync");
  return 0;
}
