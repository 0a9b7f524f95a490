// The enricher's element-wise end on the GPU (avey/kernels/kernels.h: BiasActSplit,
// ActGradConcat). Values are loaded to fp32, computed, and rounded once on store; the kernels
// that move whole activations take one 16-byte vector a thread (kVec elements, common.cuh) when
// the widths and pointers allow it, with 32-bit indices.
#include <algorithm>
#include <initializer_list>

#include "avey/kernels/kernels.h"
#include "kernels/cuda/columns.cuh"
#include "kernels/elementwise_math.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cuda {

using namespace ::kernels;
using namespace ::kernels::cuda;

// p [rows, cols] = y U^T; its columns are three parts [w0 | w1 | cols - w0 - w1]; the third
// part's matrices (z2, g2) have rows ld2 apart (a column window of a wider matrix: block_body's
// fuser input [c | Zh]).
//   bias_act_split:  v = p + bias (written back to p only with keep_p);  z_k = act(v) per part;
//                    with zn: also z0's rows normalised (the contextualizer's cosine), from z0
//                    as stored, without reading z0 back
//   act_grad_concat: gp = act'(p) (.) [g0 | g1 | g2], or act' from the output z when p is null
//                    (relu, relu2: then the forward need not write p back, and p need not be
//                    kept: 2 bytes a Z element less written, and one Z-sized tensor less saved
//                    per block)
// The activation is a template parameter (A = -1: none), so its switch is resolved at compile
// time. Vectorised path (all widths and ld2 multiples of V, pointers 16-byte aligned): thread j
// takes vector j of p, at row j / (cols / V); a vector never straddles two parts.

template <int A> __device__ __forceinline__ float act(float x) {
  if constexpr (A < 0) return x;
  else return unary_value(Unary(A), x);
}
template <int A> __device__ __forceinline__ float act_d(float x) {
  if constexpr (A < 0) return 1.f;
  else return unary_derivative(Unary(A), x);
}
// act' as a function of the output z = act(x): relu' = [z > 0], relu2' = 2 relu(x) = 2 sqrt(z)
template <int A> __device__ __forceinline__ float act_d_out(float z) {
  if constexpr (A == int(Unary::Relu)) return z > 0.f ? 1.f : 0.f;
  else if constexpr (A == int(Unary::Relu2)) return 2.f * sqrtf(z);
  else return 1.f;
}

template <class T, int A>
__global__ void bias_act_split_kernel(int64_t n, int64_t cols, T* p, const T* bias, int64_t w0, int64_t w1, T* z0,
                                      T* z1, T* z2, int64_t ld2, bool keep_p) {
  AVEY_GRID_STRIDE(i, n) {
    const int64_t r = i / cols, c = i - r * cols;
    const float v = load(p, i) + load(bias, c);
    if (keep_p) store(p, i, v);
    const float z = act<A>(v);
    if (c < w0) store(z0, r * w0 + c, z);
    else if (c < w0 + w1) store(z1, r * w1 + (c - w0), z);
    else store(z2, r * ld2 + (c - w0 - w1), z);
  }
}

// Vector c of p's row (at = the row's first vector): v = p + bias (written back with keep_p), act(v).
template <class T, int A>
__device__ __forceinline__ void bias_act_vector(T* __restrict__ p, const T* __restrict__ bias, int64_t at, uint32_t c,
                                                bool keep_p, float (&x)[kVec<T>]) {
  constexpr int V = kVec<T>;
  float b[V];
  load_vec(p, (at + c) * V, x);
  load_vec(bias, int64_t(c) * V, b);
#pragma unroll
  for (int k = 0; k < V; ++k) x[k] += b[k];
  if (keep_p) store_vec(p, (at + c) * V, x);
#pragma unroll
  for (int k = 0; k < V; ++k) x[k] = act<A>(x[k]);
}

// Stores the activated vector c of row r into its part (c < v0: z0, then z1, then z2, whose rows
// are l2 vectors apart).
template <class T>
__device__ __forceinline__ void store_part(uint32_t r, uint32_t c, uint32_t v0, uint32_t v1, uint32_t l2,
                                          T* __restrict__ z0, T* __restrict__ z1, T* __restrict__ z2,
                                          const float (&x)[kVec<T>]) {
  constexpr int V = kVec<T>;
  if (c < v0) store_vec(z0, (int64_t(r) * v0 + c) * V, x);
  else if (c < v0 + v1) store_vec(z1, (int64_t(r) * v1 + (c - v0)) * V, x);
  else store_vec(z2, (int64_t(r) * l2 + (c - v0 - v1)) * V, x);
}

template <class T, int A>
__global__ void bias_act_split_vec_kernel(uint32_t nvec, uint32_t cvec, T* p, const T* bias, uint32_t v0, uint32_t v1,
                                          T* z0, T* z1, T* z2, uint32_t l2, bool keep_p) {
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    const uint32_t r = j / cvec, c = j - r * cvec;
    float x[kVec<T>];
    bias_act_vector<T, A>(p, bias, int64_t(r) * cvec, c, keep_p, x);
    store_part(r, c, v0, v1, l2, z0, z1, z2, x);
  }
}

// With z0's row norm: one warp per row, kNormRows rows a block (the spare warps of the last
// block leave). Lane l takes the vectors l, l + 32, ... of the row's z0 part (at most NV),
// holds them as stored (rounded to T) while the warp sums their squares, then writes zn = z0 *
// inv and denom; then the row's other vectors as the flat kernel does. The squares are summed
// in the order of l2norm_rows's warp kernel (norms.cu), with the same formula
// (elementwise_math.h), so zn and denom are the bits l2norm_rows would write reading z0 back.
constexpr int kNormRows = 8;  // warps of a 256-thread block
template <class T, int A, int NV>
__global__ void bias_act_split_norm_kernel(uint32_t rows, uint32_t cvec, T* __restrict__ p,
                                           const T* __restrict__ bias, uint32_t v0, uint32_t v1, T* __restrict__ z0,
                                           T* __restrict__ z1, T* __restrict__ z2, uint32_t l2, bool keep_p,
                                           T* __restrict__ zn,
                                           T* __restrict__ denom, float eps) {
  constexpr int V = kVec<T>;
  const uint32_t r = blockIdx.x * kNormRows + threadIdx.x / 32, lane = threadIdx.x & 31;
  if (r >= rows) return;  // whole warps leave: the shuffles below stay full-warp
  const int64_t at = int64_t(r) * cvec;
  float z[NV][V], ss = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const uint32_t c = lane + 32 * j;
    if (c >= v0) continue;
    bias_act_vector<T, A>(p, bias, at, c, keep_p, z[j]);
    store_vec(z0, (int64_t(r) * v0 + c) * V, z[j]);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      z[j][k] = rounded<T>(z[j][k]);
      ss += z[j][k] * z[j][k];
    }
  }
  const float d = l2_denominator(NormEps::Inside, warp_reduce(ss, Sum{}), eps), inv = l2_inverse(d);
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const uint32_t c = lane + 32 * j;
    if (c >= v0) continue;
#pragma unroll
    for (int k = 0; k < V; ++k) z[j][k] *= inv;
    store_vec(zn, (int64_t(r) * v0 + c) * V, z[j]);
  }
  if (lane == 0) store(denom, r, d);
  for (uint32_t c = v0 + lane; c < cvec; c += 32) {
    float x[V];
    bias_act_vector<T, A>(p, bias, at, c, keep_p, x);
    store_part(r, c, v0, v1, l2, z0, z1, z2, x);
  }
}

template <class T, int A>
__global__ void act_grad_concat_kernel(int64_t n, int64_t cols, const T* p, const T* z0, const T* z1, const T* z2,
                                       int64_t ld2, int64_t w0, int64_t w1, const T* g0, const T* g1, const T* g2,
                                       T* gp) {
  AVEY_GRID_STRIDE(i, n) {
    const int64_t r = i / cols, c = i - r * cols;
    const int part = c < w0 ? 0 : (c < w0 + w1 ? 1 : 2);
    const int64_t j = part == 0 ? r * w0 + c : (part == 1 ? r * w1 + (c - w0) : r * ld2 + (c - w0 - w1));
    const float g = load(part == 0 ? g0 : (part == 1 ? g1 : g2), j);
    const float d = p ? act_d<A>(load(p, i)) : act_d_out<A>(load(part == 0 ? z0 : (part == 1 ? z1 : z2), j));
    store(gp, i, g * d);
  }
}

// One 16-byte vector of gp: g (loaded from its part at `at`) times act' from p (at j, gp's own
// index) or from the part's z.
template <class T, int A>
__device__ __forceinline__ void act_grad_vector(const T* __restrict__ p, const T* __restrict__ z_src,
                                                const T* __restrict__ g_src, int64_t at, int64_t j, float (&g)[kVec<T>]) {
  constexpr int V = kVec<T>;
  float x[V];
  load_vec(g_src, at, g);
  if (A < 0) return;
  if (p) {
    load_vec(p, j * V, x);
#pragma unroll
    for (int k = 0; k < V; ++k) g[k] *= act_d<A>(x[k]);
  } else {
    load_vec(z_src, at, x);
#pragma unroll
    for (int k = 0; k < V; ++k) g[k] *= act_d_out<A>(x[k]);
  }
}

// Vectorised: thread j takes vector j of gp, at row j / (cols / V); a vector never straddles
// two parts.
template <class T, int A>
__global__ void act_grad_concat_vec_kernel(uint32_t nvec, uint32_t cvec, const T* p, const T* z0, const T* z1,
                                           const T* z2, uint32_t l2, uint32_t v0, uint32_t v1, const T* g0,
                                           const T* g1, const T* g2, T* gp) {
  constexpr int V = kVec<T>;
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    const uint32_t r = j / cvec, c = j - r * cvec;
    const int part = c < v0 ? 0 : (c < v0 + v1 ? 1 : 2);
    const int64_t at = part == 0 ? (int64_t(r) * v0 + c) * V
                                 : (part == 1 ? (int64_t(r) * v1 + (c - v0)) * V : (int64_t(r) * l2 + (c - v0 - v1)) * V);
    float g[V];
    act_grad_vector<T, A>(p, part == 0 ? z0 : (part == 1 ? z1 : z2), part == 0 ? g0 : (part == 1 ? g1 : g2), at, j, g);
    store_vec(gp, int64_t(j) * V, g);
  }
}

// The same with the column sums of gp (the enricher bias's gradient) in the same pass: a block
// of 512 threads, X = 32, 64 or 128 vector columns (the fewest that cover the row, so narrow rows
// leave no thread idle) times 512 / X row sets. Thread (x, y) takes vector column
// c = blockIdx.x * X + x (its part, hence its source pointers, is fixed) on the rows y, y + Y,
// ... of a chunk of rows (blockIdx.y), adding up its 8 columns. The row sets meet in shared
// memory in y order and leave as one partial row per chunk, which finish_columns adds up in a
// fixed order: deterministic. The sums take the stored (rounded) gp, as a product with a ones
// vector over gp would. Chunks of 64 rows, or 16 below 16384 rows (enough blocks to fill the
// GPU); both set by the shape alone. Three blocks a multiprocessor (40 registers a thread): at
// two, register-bound, it moved 2.25 TB/s (ncu).
constexpr int kAgcThreads = 512;
inline int agc_columns(uint32_t cvec) { return cvec <= 32 ? 32 : (cvec <= 64 ? 64 : 128); }
inline uint32_t agc_chunk(int64_t rows) { return rows >= 16384 ? 64 : 16; }
template <class T, int A>
__global__ void __launch_bounds__(kAgcThreads, 3)
    act_grad_concat_sum_kernel(uint32_t rows, uint32_t cvec, uint32_t chunk, const T* __restrict__ p,
                               const T* __restrict__ z0, const T* __restrict__ z1, const T* __restrict__ z2,
                               uint32_t l2, uint32_t v0, uint32_t v1, const T* __restrict__ g0,
                               const T* __restrict__ g1, const T* __restrict__ g2, T* __restrict__ gp,
                               float* __restrict__ partial) {
  constexpr int V = kVec<T>;
  __shared__ float buf[kAgcThreads * V];  // [row set][column of the block's X * V]
  const uint32_t X = blockDim.x, Y = blockDim.y, width_el = X * V;
  const uint32_t c = blockIdx.x * X + threadIdx.x;
  const bool live = c < cvec;
  const int part = c < v0 ? 0 : (c < v0 + v1 ? 1 : 2);
  const uint32_t width = part == 0 ? v0 : (part == 1 ? v1 : l2), col = part == 0 ? c : (part == 1 ? c - v0 : c - v0 - v1);
  const T* g_src = part == 0 ? g0 : (part == 1 ? g1 : g2);
  const T* z_src = part == 0 ? z0 : (part == 1 ? z1 : z2);
  float sum[V] = {};
  const uint32_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  for (uint32_t r = r0 + threadIdx.y; live && r < r1; r += Y) {
    const int64_t j = int64_t(r) * cvec + c;
    float g[V];
    act_grad_vector<T, A>(p, z_src, g_src, (int64_t(r) * width + col) * V, j, g);
    store_vec(gp, j * V, g);
#pragma unroll
    for (int k = 0; k < V; ++k) sum[k] += rounded<T>(g[k]);
  }
#pragma unroll
  for (int k = 0; k < V; ++k) buf[threadIdx.y * width_el + threadIdx.x * V + k] = sum[k];
  __syncthreads();
  for (uint32_t i = threadIdx.y * X + threadIdx.x; i < width_el; i += X * Y) {
    const int64_t col_el = int64_t(blockIdx.x) * width_el + i;
    if (col_el >= int64_t(cvec) * V) continue;
    float t = 0.f;
    for (uint32_t y = 0; y < Y; ++y) t += buf[y * width_el + i];
    partial[int64_t(blockIdx.y) * cvec * V + col_el] = t;
  }
}

namespace {

// Calls launch(std::integral_constant<int, A>) for the activation (A = -1: none).
template <class L> void with_act(bool has_act, Unary f, L&& launch) {
  if (!has_act) return launch(std::integral_constant<int, -1>{});
  switch (f) {
    case Unary::Relu: return launch(std::integral_constant<int, int(Unary::Relu)>{});
    case Unary::Relu2: return launch(std::integral_constant<int, int(Unary::Relu2)>{});
    case Unary::Gelu: return launch(std::integral_constant<int, int(Unary::Gelu)>{});
    case Unary::Silu: return launch(std::integral_constant<int, int(Unary::Silu)>{});
    default: fail("bias_act_split", "unsupported enricher activation", __FILE__, __LINE__);
  }
}

// The vectorised path applies: every part's width and ld2 multiples of V, the pointers aligned,
// 32-bit indices.
template <class T>
bool parts_vec_ok(int64_t rows, int64_t cols, int64_t w0, int64_t w1, int64_t ld2,
                  std::initializer_list<const void*> ptrs) {
  constexpr int V = kVec<T>;
  if (cols % V || w0 % V || w1 % V || ld2 % V || rows * std::max(cols, ld2) / V > int64_t(UINT32_MAX) / 2) return false;
  for (const void* q : ptrs)
    if (q && !aligned16(q)) return false;
  return true;
}

}  // namespace

template <class T> void bias_act_split(const BiasActSplit<T>& args) {
  // (named copies rather than structured bindings: C++17 lambdas cannot capture those)
  const int64_t rows = args.rows, cols = args.cols, w0 = args.w0, w1 = args.w1, ld2 = args.ld2;
  T *p = args.p, *z0 = args.z0, *z1 = args.z1, *z2 = args.z2, *zn = args.zn, *denom = args.denom;
  const T* bias = args.bias;
  const bool has_act = args.has_act, keep_p = args.keep_p;
  const Unary f = args.f;
  const double eps = args.eps;
  const int64_t n = rows * cols;
  if (n <= 0) return;
  constexpr int V = kVec<T>;
  const bool vec = parts_vec_ok<T>(rows, cols, w0, w1, ld2, {p, bias, z0, z1, z2, zn});
  const int64_t nv = (w0 / V + 31) / 32;  // z0's vectors a lane in the row-norm kernel
  if (zn && vec && nv >= 1 && nv <= 4) {
    with_act(has_act, f, [&](auto a) {
      auto launch = [&](auto nv_c) {
        bias_act_split_norm_kernel<T, decltype(a)::value, decltype(nv_c)::value>
            <<<unsigned((rows + kNormRows - 1) / kNormRows), 32 * kNormRows, 0, stream()>>>(
                uint32_t(rows), uint32_t(cols / V), p, bias, uint32_t(w0 / V), uint32_t(w1 / V), z0, z1, z2,
                uint32_t(ld2 / V), keep_p, zn, denom, float(eps));
      };
      switch (nv) {
        case 1: launch(std::integral_constant<int, 1>{}); break;
        case 2: launch(std::integral_constant<int, 2>{}); break;
        case 3: launch(std::integral_constant<int, 3>{}); break;
        default: launch(std::integral_constant<int, 4>{}); break;
      }
    });
    AVEY_LAUNCH_CHECK("bias_act_split");
    return;
  }
  with_act(has_act, f, [&](auto a) {
    constexpr int A = decltype(a)::value;
    if (vec)
      bias_act_split_vec_kernel<T, A><<<blocks_for(n / V), kThreads, 0, stream()>>>(
          uint32_t(n / V), uint32_t(cols / V), p, bias, uint32_t(w0 / V), uint32_t(w1 / V), z0, z1, z2,
          uint32_t(ld2 / V), keep_p);
    else
      bias_act_split_kernel<T, A>
          <<<blocks_for(n), kThreads, 0, stream()>>>(n, cols, p, bias, w0, w1, z0, z1, z2, ld2, keep_p);
  });
  AVEY_LAUNCH_CHECK("bias_act_split");
  // odd widths, or z0's rows too long for the registers: the same values from z0 read back
  if (zn) l2norm_rows(NormEps::Inside, rows, w0, z0, eps, zn, denom);
}

template <class T> void act_grad_concat(const ActGradConcat<T>& args) {
  const int64_t rows = args.rows, cols = args.cols, w0 = args.w0, w1 = args.w1, ld2 = args.ld2;
  const T *p = args.p, *z0 = args.z0, *z1 = args.z1, *z2 = args.z2, *g0 = args.g0, *g1 = args.g1, *g2 = args.g2;
  T *gp = args.gp, *gbias = args.gbias;
  const bool has_act = args.has_act;
  const Unary f = args.f;
  const int64_t n = rows * cols;
  if (n <= 0) return;
  if (!p && has_act && f != Unary::Relu && f != Unary::Relu2)
    fail("act_grad_concat", "needs p for this activation", __FILE__, __LINE__);
  constexpr int V = kVec<T>;
  const bool vec = parts_vec_ok<T>(rows, cols, w0, w1, ld2, {p, z0, z1, z2, g0, g1, g2, gp});
  if (!vec) {
    with_act(has_act, f, [&](auto a) {
      act_grad_concat_kernel<T, decltype(a)::value>
          <<<blocks_for(n), kThreads, 0, stream()>>>(n, cols, p, z0, z1, z2, ld2, w0, w1, g0, g1, g2, gp);
    });
    AVEY_LAUNCH_CHECK("act_grad_concat");
    if (gbias) column_sums(rows, cols, LoadAt<T>{gp, cols}, gbias);
    return;
  }
  const uint32_t cvec = uint32_t(cols / V);
  if (!gbias) {
    with_act(has_act, f, [&](auto a) {
      act_grad_concat_vec_kernel<T, decltype(a)::value><<<blocks_for(n / V), kThreads, 0, stream()>>>(
          uint32_t(n / V), cvec, p, z0, z1, z2, uint32_t(ld2 / V), uint32_t(w0 / V), uint32_t(w1 / V), g0, g1, g2,
          gp);
    });
    AVEY_LAUNCH_CHECK("act_grad_concat");
    return;
  }
  const uint32_t chunk = agc_chunk(rows), chunks = uint32_t((rows + chunk - 1) / chunk);
  if (chunks > 65535) fail("act_grad_concat", "too many rows for the column grid", __FILE__, __LINE__);
  Scratch partial(size_t(chunks) * size_t(cols) * sizeof(float));
  const int X = agc_columns(cvec);
  with_act(has_act, f, [&](auto a) {
    act_grad_concat_sum_kernel<T, decltype(a)::value>
        <<<dim3((cvec + X - 1) / X, chunks), dim3(X, kAgcThreads / X), 0, stream()>>>(
            uint32_t(rows), cvec, chunk, p, z0, z1, z2, uint32_t(ld2 / V), uint32_t(w0 / V), uint32_t(w1 / V), g0, g1,
            g2, gp, partial.as<float>());
  });
  AVEY_LAUNCH_CHECK("act_grad_concat");
  finish_columns(int64_t(chunks), cols, partial.as<float>(), gbias);
}

AVEY_INSTANTIATE_CUDA(bias_act_split)
AVEY_INSTANTIATE_CUDA(act_grad_concat)

}  // namespace avey::kernels::cuda
