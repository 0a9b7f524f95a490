// Matrix products through cuBLASLt (plain, batched, and a Linear layer with its residual and bias
// in the epilogue) and a tiled transpose.
//
// cuBLAS is column-major; our matrices are row-major. A row-major M x N matrix C has the same
// bytes as the column-major N x M matrix C^T, and C = op(A) op(B) is C^T = op(B)^T op(A)^T. So
// we ask cuBLAS for the column-major product op(B)^T op(A)^T with m = N, n = M: the B buffer
// is passed first, each transpose flag stays as given (a row-major buffer read column-major
// is already transposed), and the leading dimensions are the row-major row lengths.
//
// One strided-batched call covers the whole batch (a stride of 0 shares an operand). Every type
// accumulates in fp32 (CUBLAS_COMPUTE_32F); for f32 that is true fp32, not TF32, so the result
// matches the CPU to rounding. bf16 inputs and output, fp32 inside.
//
// Which kernel: cuBLASLt lists candidate algorithms for a product's shape, best guess first. The
// guess is often not the fastest (measured on the H100 for the products of an Avey step: up to
// 17% slower, benchmarks/bench_gemm.cu), so the first time a shape is seen its candidates are
// each timed on the real operands (into a scratch output) and the fastest is kept, unless it
// beats the first guess by less than 3%. The choice is remembered for the process and written to
// a tuning file (one line a shape, under $AVEY_CACHE_DIR or ~/.cache/avey, named for the GPU and
// the cuBLASLt version), which later runs read: so every run on a machine uses the same kernels
// and a training run repeats bit for bit. AVEY_GEMM_TUNING=0 takes the first guess everywhere.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"

namespace kernels::cuda {

namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(what, cublasGetStatusString(s), __FILE__, __LINE__);
}

template <class T> constexpr cudaDataType_t cuda_type() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

void check_int(int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX) fail("matmul", (std::string(name) + " does not fit cuBLAS's int").c_str(), __FILE__, __LINE__);
}

// One product as cuBLASLt sees it (column-major, operands swapped as above).
struct Product {
  cudaDataType_t in, out;
  int64_t batch, M, N, K;
  bool ta, tb, accumulate;  // accumulate: beta != 0
  bool bias, addend;        // a bias epilogue; the added C read from another buffer than the output
  int64_t lda, ldb, ldc;    // row lengths of the row-major buffers
  int64_t strideA, strideB, strideC;
  int alignA, alignB, alignC;  // the pointers' alignment in bytes (a power of two, at most 256)

  // Everything that picks the kernel, as numbers: the plan cache's key (no allocation per product).
  using Key = std::array<int64_t, 20>;
  Key key() const {
    return {int64_t(in), int64_t(out), batch,   M,       N,       K,      ta,     tb,     accumulate, bias,
            addend,      lda,          ldb,     ldc,     strideA, strideB, strideC, alignA, alignB, alignC};
  }
  // The same as text, for the tuning file (read and written once per shape).
  std::string text() const {
    std::string t;
    for (int64_t v : key()) t += (t.empty() ? "" : " ") + std::to_string(v);
    return t;
  }
};

int alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int bytes = 1;
  while (bytes < 256 && a % uintptr_t(bytes * 2) == 0) bytes *= 2;
  return bytes;
}

// The descriptors of one shape and the algorithm chosen for it.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool usable = false;  // false: cuBLASLt offered nothing; use cublasGemmStridedBatchedEx
};

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct Tuner {
  std::mutex mutex;
  cublasLtHandle_t lt = nullptr;
  cublasHandle_t blas = nullptr;
  void* workspace = nullptr;
  std::map<Product::Key, Plan> plans;
  std::unordered_map<std::string, int> saved;  // key -> candidate rank, from the tuning file
  std::string path;
  bool tune = true;

  Tuner() {
    check_cublas(cublasLtCreate(&lt), "cublasLtCreate");
    check_cublas(cublasCreate(&blas), "cublasCreate");
    check_cublas(cublasSetStream(blas, stream()), "cublasSetStream");
    // Default math with CUBLAS_COMPUTE_32F: f32 stays fp32 (TF32 would need CUBLAS_TF32_TENSOR_OP_MATH).
    check_cublas(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    AVEY_CUDA_CHECK(cudaMalloc(&workspace, kWorkspaceBytes));
    const char* t = std::getenv("AVEY_GEMM_TUNING");
    tune = !(t && std::string(t) == "0");
    std::string name = device_name();
    for (char& c : name)
      if (!isalnum(static_cast<unsigned char>(c))) c = '-';
    const char* dir = std::getenv("AVEY_CACHE_DIR");
    const char* home = std::getenv("HOME");
    std::filesystem::path base = dir ? dir : home ? std::filesystem::path(home) / ".cache" / "avey" : "";
    if (!base.empty())
      path = (base / ("gemm-" + name + "-cublasLt" + std::to_string(cublasLtGetVersion()) + ".tsv")).string();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {  // "key<TAB>rank"; anything malformed is ignored (re-tuned)
      const size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      try {
        saved[line.substr(0, tab)] = std::stoi(line.substr(tab + 1));
      } catch (const std::exception&) {
      }
    }
  }

  void remember(const std::string& key, int rank) {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::ofstream(path, std::ios::app) << key << '\t' << rank << '\n';  // a failed write only costs a re-tune
  }

  Plan make(const Product& g) {
    Plan p;
    const cudaDataType_t scale = CUDA_R_32F;
    check_cublas(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, scale), "cublasLtMatmulDescCreate");
    const cublasOperation_t opB = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opA = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof opB), "transa");
    check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof opA), "transb");
    if (g.bias) {  // the bias is per row of the column-major output: per column of ours
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
                   "epilogue");
      check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &g.out, sizeof g.out),
                   "bias type");
    }
    // column-major: the first operand is op(B)^T, N x K, stored (tb ? K x N : N x K); the second op(A)^T.
    check_cublas(cublasLtMatrixLayoutCreate(&p.la, g.in, g.tb ? g.K : g.N, g.tb ? g.N : g.K, g.ldb), "layout");
    check_cublas(cublasLtMatrixLayoutCreate(&p.lb, g.in, g.ta ? g.M : g.K, g.ta ? g.K : g.M, g.lda), "layout");
    check_cublas(cublasLtMatrixLayoutCreate(&p.lc, g.out, g.N, g.M, g.ldc), "layout");
    if (g.batch > 1) {
      const int32_t count = int32_t(g.batch);
      for (auto [l, stride] : {std::pair{p.la, g.strideB}, std::pair{p.lb, g.strideA}, std::pair{p.lc, g.strideC}}) {
        check_cublas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count), "batch");
        check_cublas(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                      sizeof stride),
                     "batch stride");
      }
    }
    cublasLtMatmulPreference_t pref;
    check_cublas(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint64_t ws = kWorkspaceBytes;
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), "ws");
    const uint32_t al[3] = {uint32_t(g.alignB), uint32_t(g.alignA), uint32_t(g.alignC)};  // cuBLASLt's A, B, C
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], 4), "al");
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], 4), "al");
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], 4), "al");
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2], 4), "al");
    candidates.assign(8, {});
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt, p.desc, p.la, p.lb, p.lc, p.lc, pref, int(candidates.size()),
                                       candidates.data(), &found) != CUBLAS_STATUS_SUCCESS)
      found = 0;
    cublasLtMatmulPreferenceDestroy(pref);
    candidates.resize(size_t(found));
    p.usable = found > 0;
    if (p.usable) p.algo = candidates[0].algo;
    return p;
  }

  // Times every candidate on the real operands into a scratch output; returns the rank to use.
  int time_candidates(const Plan& p, const Product& g, const void* A, const void* B, const void* bias) {
    const size_t out_bytes = size_t(g.batch > 1 ? g.strideC * (g.batch - 1) + g.M * g.ldc : g.M * g.ldc) *
                             (g.out == CUDA_R_32F ? 4 : 2);
    Scratch c(out_bytes);
    AVEY_CUDA_CHECK(cudaMemsetAsync(c.ptr, 0, out_bytes, stream()));
    cudaEvent_t e0, e1;
    AVEY_CUDA_CHECK(cudaEventCreate(&e0));
    AVEY_CUDA_CHECK(cudaEventCreate(&e1));
    if (g.bias) set_bias(p, bias);
    const float alpha = 1.f, beta = g.accumulate ? 1.f : 0.f;
    std::vector<float> best(candidates.size(), 1e30f);
    for (size_t i = 0; i < candidates.size(); ++i) {
      std::vector<float> t;
      for (int r = 0; r < 7; ++r) {
        AVEY_CUDA_CHECK(cudaEventRecord(e0, stream()));
        if (cublasLtMatmul(lt, p.desc, &alpha, B, p.la, A, p.lb, &beta, c.ptr, p.lc, c.ptr, p.lc, &candidates[i].algo,
                           workspace, kWorkspaceBytes, stream()) != CUBLAS_STATUS_SUCCESS)
          break;
        AVEY_CUDA_CHECK(cudaEventRecord(e1, stream()));
        AVEY_CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        AVEY_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0) t.push_back(ms);  // the first run warms up
      }
      if (t.size() < 6) continue;
      std::sort(t.begin(), t.end());
      best[i] = t[t.size() / 2];
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    int rank = 0;
    for (size_t i = 1; i < best.size(); ++i)
      if (best[i] < best[size_t(rank)]) rank = int(i);
    return best[size_t(rank)] < 0.97f * best[0] ? rank : 0;
  }

  void set_bias(const Plan& p, const void* bias) {
    check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 "bias pointer");
  }

  const Plan& plan(const Product& g, const void* A, const void* B, const void* bias) {
    auto it = plans.find(g.key());
    if (it != plans.end()) return it->second;
    const std::string key = g.text();
    Plan p = make(g);
    if (p.usable && tune && candidates.size() > 1) {
      auto s = saved.find(key);
      int rank = 0;
      if (s != saved.end() && s->second >= 0 && s->second < int(candidates.size())) {
        rank = s->second;
      } else {
        rank = time_candidates(p, g, A, B, bias);
        remember(key, rank);
      }
      p.algo = candidates[size_t(rank)].algo;
    }
    return plans.emplace(g.key(), p).first->second;
  }

  std::vector<cublasLtMatmulHeuristicResult_t> candidates;
};

Tuner& tuner() {
  static Tuner* t = new Tuner;  // never destroyed: products may run during static destruction
  return *t;
}

// C = alpha op(A) op(B) + beta C, row-major with row lengths lda, ldb, ldc, batched with the
// given strides. With addend, the C added is read from there (same layout) instead of from the
// output; with bias, bias[n] is added to every row (both need cuBLASLt: returns false, having
// done nothing, where it offers no kernel for them).
bool gemm(cudaDataType_t in, cudaDataType_t out, const void* A, int64_t lda, const void* B, int64_t ldb, void* C,
          int64_t ldc, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta,
          int64_t strideA, int64_t strideB, int64_t strideC, const void* addend = nullptr,
          const void* bias = nullptr) {
  if (batch == 0 || M == 0 || N == 0) return true;
  check_int(M, "M");
  check_int(N, "N");
  check_int(K, "K");
  check_int(batch, "batch");
  lda = std::max<int64_t>(1, lda), ldb = std::max<int64_t>(1, ldb);
  check_int(lda, "lda");
  check_int(ldb, "ldb");
  check_int(ldc, "ldc");
  const void* Cin = addend ? addend : C;
  Tuner& t = tuner();
  std::lock_guard<std::mutex> lock(t.mutex);
  const Product g{in,  out,  batch, M,   N,   K,       ta,      tb,      beta != 0.f,  bias != nullptr, addend != nullptr,
               lda, ldb,  ldc,   strideA, strideB, strideC, alignment(A), alignment(B),
               std::min(alignment(C), alignment(Cin))};
  static const Plan none;  // K = 0: cuBLAS's plain call scales C
  const Plan& p = K > 0 ? t.plan(g, A, B, bias) : none;
  if (p.usable) {
    if (bias) t.set_bias(p, bias);
    check_cublas(cublasLtMatmul(t.lt, p.desc, &alpha, B, p.la, A, p.lb, &beta, Cin, p.lc, C, p.lc, &p.algo,
                                t.workspace, kWorkspaceBytes, stream()),
                 "cublasLtMatmul");
    return true;
  }
  if (addend || bias) return false;
  check_cublas(cublasGemmStridedBatchedEx(t.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          int(N), int(M), int(K), &alpha, B, in, int(ldb), strideB, A, in, int(lda),
                                          strideA, &beta, C, out, int(ldc), strideC, int(batch), CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
  return true;
}

}  // namespace

template <class T> void matmul(const Gemm<T>& g) {
  gemm(cuda_type<T>(), cuda_type<T>(), g.a, g.ta ? g.m : g.k, g.b, g.tb ? g.k : g.n, g.c, g.n, g.batch, g.m, g.n, g.k,
       g.ta, g.tb, float(g.alpha), float(g.beta), g.stride_a, g.stride_b, g.stride_c);
}

template <class T> void linear_residual(const LinearResidual<T>& a) {
  // out [rows, cols] = x [rows, in] w^T + residual + bias: the product with the residual as its
  // addend and the bias as its epilogue
  if (gemm(cuda_type<T>(), cuda_type<T>(), a.x, a.in, a.w, a.in, a.out, a.cols, 1, a.rows, a.cols, a.in, false, true,
           1.f, 1.f, 0, 0, 0, a.residual, a.bias))
    return;
  binary(Binary::Add, Broadcast::Row, a.rows, a.cols, a.residual, a.bias, a.out);  // no fused kernel offered: two passes
  gemm(cuda_type<T>(), cuda_type<T>(), a.x, a.in, a.w, a.in, a.out, a.cols, 1, a.rows, a.cols, a.in, false, true, 1.f,
       1.f, 0, 0, 0);
}

void matmul_bf16_f32(const bf16* A, const bf16* B, float* C, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                     double beta) {
  gemm(CUDA_R_16BF, CUDA_R_32F, A, ta ? M : K, B, tb ? K : N, C, N, 1, M, N, K, ta, tb, 1.f, float(beta), 0, 0, 0);
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

AVEY_INSTANTIATE_CUDA(matmul)
AVEY_INSTANTIATE_CUDA(linear_residual)
AVEY_INSTANTIATE_CUDA(transpose)

}  // namespace kernels::cuda
