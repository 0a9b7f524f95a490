// Every matrix product of one Avey block's train step (bf16 in and out, fp32 accumulation), each
// timed alone on the GPU: what cuBLAS's default choice gives (the engine's kernels/cuda/matmul.cu
// path, cublasGemmStridedBatchedEx) against the best of cuBLASLt's heuristic candidates, and the
// rate each reaches. The last lines sum a step's products (per block x layers) for both.
//
//   bench_gemm [--config small|tiny] [--batch 8] [--seq-len 512] [--candidates 16]
//
// Row-major products C = op(A) op(B) are asked of cuBLAS as the column-major C^T = op(B)^T op(A)^T
// (as in matmul.cu). Times are medians of 20 launches between CUDA events, after a warm-up, on
// random (not zero) inputs.
#include <cublasLt.h>

#include <string>
#include <vector>

#include "avey/config.h"
#include "benchmarks/cuda_bench.cuh"

namespace {

struct Shape {
  std::string name;
  int batch, M, N, K;
  bool ta, tb;
  float beta;
};

}  // namespace

int main(int argc, char** argv) {
  std::string config = "small";
  int B = 0, T = 512, candidates = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--config") config = v;
    else if (k == "--batch") B = std::stoi(v);
    else if (k == "--seq-len") T = std::stoi(v);
    else if (k == "--candidates") candidates = std::stoi(v);
    else {
      std::fprintf(stderr, "bench_gemm: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  avey::Config cfg = avey::load_config(config);
  if (B == 0) B = config == "tiny" ? 16 : 8;
  const int S = int(cfg.split_size), C = int(cfg.context_rows()), n = (T + S - 1) / S, N = B * n, R = N * C;
  const int d = int(cfg.d_embed), m = int(cfg.expanded_width()), h = int(cfg.half_tail()), mh = int(cfg.head_width());
  const int V = int(cfg.vocab_size), tokens = B * T;
  // {name, batch, M, N, K, ta, tb, beta}: the products of avey/block.cpp and avey/head.cpp.
  std::vector<Shape> block = {
      {"enricher P = Y U^T", 1, R, m, d, false, true, 0},
      {"cos = Zn Zn^T", N, C, C, h, false, true, 0},
      {"Yc = A Z0", N, C, h, C, false, false, 0},
      {"out += c O0^T", 1, R, d, h, false, true, 1},
      {"out += Zh O1^T", 1, R, d, mh, false, true, 1},
      {"dO0 = dF^T c", 1, d, h, R, true, false, 0},
      {"dO1 = dF^T Zh", 1, d, mh, R, true, false, 0},
      {"dc = dF O0", 1, R, h, d, false, false, 0},
      {"dZh = dF O1", 1, R, mh, d, false, false, 0},
      {"dA = dYc Z0^T", N, C, C, h, false, true, 0},
      {"dZn = Sym Zn", N, C, h, C, false, false, 0},
      {"dZ0 += A^T dYc", N, C, h, C, true, false, 1},
      {"dU = dP^T Y", 1, m, d, R, true, false, 0},
      {"dY = dP U", 1, R, d, m, false, false, 0},
  };
  std::vector<Shape> head = {
      {"logits = Hf E^T", 1, tokens, V, d, false, true, 0},
      {"dHf = dL E", 1, tokens, d, V, false, false, 0},
      {"dE = dL^T Hf", 1, V, d, tokens, true, false, 0},
  };

  cudaStream_t s;
  check(cudaStreamCreate(&s), "stream");
  cublasHandle_t cb;
  check(cublasCreate(&cb), "cublasCreate");
  check(cublasSetStream(cb, s), "cublasSetStream");
  cublasLtHandle_t lt;
  check(cublasLtCreate(&lt), "cublasLtCreate");
  const size_t ws_bytes = 64u << 20;
  void* ws;
  check(cudaMalloc(&ws, ws_bytes), "workspace");

  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "props");
  std::printf("bench_gemm %s B%d x T%d on %s: rows %d, contexts %d x C %d, d %d, m %d, half %d, head %d\n",
              config.c_str(), B, T, prop.name, R, N, C, d, m, h, mh);
  std::printf("%-18s %5s %6s %6s %6s  %9s %7s  %9s %7s %5s  %s\n", "product", "batch", "M", "N", "K", "cublas ms",
              "TFLOP/s", "best Lt ms", "TFLOP/s", "rank", "heuristic #0 ms");
  double total_default = 0, total_best = 0, total_h0 = 0;
  auto run = [&](const std::vector<Shape>& shapes, int repeat) {
    for (const Shape& sh : shapes) {
      const size_t a_n = size_t(sh.batch) * sh.M * sh.K, b_n = size_t(sh.batch) * sh.K * sh.N,
                   c_n = size_t(sh.batch) * sh.M * sh.N;
      __nv_bfloat16 *A = random_bf16(a_n, 1, s), *Bm = random_bf16(b_n, 2, s), *Cm = random_bf16(c_n, 3, s);
      const float alpha = 1.f, beta = sh.beta;
      const int lda = sh.ta ? sh.M : sh.K, ldb = sh.tb ? sh.K : sh.N;
      const long long sA = (long long)sh.M * sh.K, sB = (long long)sh.K * sh.N, sC = (long long)sh.M * sh.N;
      const cublasOperation_t opB = sh.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = sh.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
      float t_default =
          median_ms([&] { cublas_gemm(cb, sh.batch, sh.M, sh.N, sh.K, sh.ta, sh.tb, A, Bm, Cm, sh.beta); }, s);
      // cuBLASLt: column-major "A" = our B (rows of B^T...), as above.
      cublasLtMatmulDesc_t desc;
      check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
      check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof opB), "transa");
      check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof opA), "transb");
      cublasLtMatrixLayout_t la, lb, lc;
      // column-major shapes: first operand op(.)=N x K stored (tb ? K x N : N x K) with ld ldb
      check(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, sh.tb ? sh.K : sh.N, sh.tb ? sh.N : sh.K, ldb), "la");
      check(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, sh.ta ? sh.M : sh.K, sh.ta ? sh.K : sh.M, lda), "lb");
      check(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, sh.N, sh.M, sh.N), "lc");
      if (sh.batch > 1) {
        for (auto [l, stride] : {std::pair{la, sB}, std::pair{lb, sA}, std::pair{lc, sC}}) {
          int32_t count = sh.batch;
          check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count), "bc");
          check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
                "bs");
        }
      }
      cublasLtMatmulPreference_t pref;
      check(cublasLtMatmulPreferenceCreate(&pref), "pref");
      check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                 sizeof ws_bytes),
            "pref ws");
      std::vector<cublasLtMatmulHeuristicResult_t> res(static_cast<size_t>(candidates));
      int found = 0;
      check(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, candidates, res.data(), &found),
            "heuristic");
      float best = 1e30f, h0 = 0;
      int best_i = -1;
      for (int i = 0; i < found; ++i) {
        if (res[size_t(i)].state != CUBLAS_STATUS_SUCCESS) continue;
        bool ok = true;
        float t = median_ms(
            [&] {
              ok &= cublasLtMatmul(lt, desc, &alpha, Bm, la, A, lb, &beta, Cm, lc, Cm, lc, &res[size_t(i)].algo, ws,
                                   ws_bytes, s) == CUBLAS_STATUS_SUCCESS;
            },
            s);
        if (!ok) continue;
        if (i == 0) h0 = t;
        if (t < best) best = t, best_i = i;
      }
      const double flop = 2.0 * sh.batch * sh.M * sh.N * double(sh.K);
      std::printf("%-18s %5d %6d %6d %6d  %9.3f %7.0f  %9.3f %7.0f %5d  %.3f\n", sh.name.c_str(), sh.batch, sh.M, sh.N,
                  sh.K, t_default, flop / t_default / 1e9, best, flop / best / 1e9, best_i, h0);
      total_default += repeat * t_default;
      total_best += repeat * std::min(best, t_default);
      total_h0 += repeat * (h0 > 0 ? h0 : t_default);
      cublasLtMatmulPreferenceDestroy(pref);
      cublasLtMatrixLayoutDestroy(la);
      cublasLtMatrixLayoutDestroy(lb);
      cublasLtMatrixLayoutDestroy(lc);
      cublasLtMatmulDescDestroy(desc);
      cudaFree(A);
      cudaFree(Bm);
      cudaFree(Cm);
    }
  };
  run(block, int(cfg.n_layers));
  run(head, 1);
  std::printf("step's products (block x %lld + head): cublas default %.2f ms, Lt heuristic #0 %.2f ms, best of both %.2f ms\n",
              (long long)cfg.n_layers, total_default, total_h0, total_best);
  return 0;
}
