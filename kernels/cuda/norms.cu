// Row-wise kernels: softmax, RMSNorm, LayerNorm, L2 normalisation, and their backwards.
//
// Mapping: one block per row (a multiple of 32 threads, up to 1024, fitted to the row length);
// thread t handles columns t, t + blockDim, ... Row statistics (max, sums) come from the fixed
// block tree in common.cuh, so they are deterministic; each pass re-reads the row, which is
// small enough to stay in L1/L2. Everything is computed in fp32. Gain gradients (summed over
// rows) use the deterministic two-pass column sums of columns.cuh.
//
// Backward formulas (per row, n = cols, sums over the row):
//   softmax  gx = y * (gy - sum(y gy))
//   rmsnorm  y = x r g, r = (mean x^2 + eps)^-1/2:   gx = r (g gy) - x r^3 sum(g gy x) / n
//   layernorm xh = (x - mu) r, d = g gy:              gx = r (d - mean(d) - xh mean(d xh))
//   l2norm   y = x / D(s), s = |x|:  gx = gy / D - x (gy . x) D'(s) / (s D^2), with
//            D = s + eps (D' = 1), sqrt(s^2 + eps) (D' = s / D), max(s, eps) (D' = [s > eps])
// Rows of RMSNorm and L2 normalisation whose length is a multiple of kVec (every Avey width) take
// a faster mapping: one warp per row, lane l reading the 16-byte vectors l, l + 32, ... of the
// row, and a warp-shuffle reduction (no shared memory, no block barrier). A block of 256 threads
// holds 8 rows. Per row this reads x once for the statistics and once more (from L1) for the
// output; the one-block-per-row kernels with 2-byte accesses reached about half the bandwidth.
// Both reductions are fixed trees, so results repeat bit for bit.
// Backward uses the saved rstd (for bf16 rounded to 8 bits: a relative error under 0.4%). The
// saved bf16 mean would cost more (its rounding error scales with |mean|, not with the spread
// of the row), so for bf16 layernorm backward recomputes the mean from x in fp32.
#include <initializer_list>

#include "kernels/cuda/columns.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"
#include "kernels/elementwise_math.h"

namespace kernels::cuda {

namespace {
unsigned rows_grid(int64_t rows) { return unsigned(rows); }
}  // namespace

// ---------------------------------------------------------------- softmax

template <class T> __global__ void softmax_kernel(int64_t cols, const T* x, T* y) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, load(x, base + c));
  m = block_reduce(m, Max{}, shared);
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(load(x, base + c) - m);
  s = block_reduce(s, Sum{}, shared);
  const float inv = 1.f / s;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) store(y, base + c, expf(load(x, base + c) - m) * inv);
}

template <class T> __global__ void softmax_backward_kernel(int64_t cols, const T* y, const T* gy, T* gx) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float d = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) d += load(y, base + c) * load(gy, base + c);
  d = block_reduce(d, Sum{}, shared);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store(gx, base + c, load(y, base + c) * (load(gy, base + c) - d));
}

template <class T> void softmax_rows(int64_t rows, int64_t cols, const T* x, T* y) {
  if (rows <= 0 || cols <= 0) return;
  softmax_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, y);
  AVEY_LAUNCH_CHECK("softmax_rows");
}
template <class T> void softmax_rows_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx) {
  if (rows <= 0 || cols <= 0) return;
  softmax_backward_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, y, gy, gx);
  AVEY_LAUNCH_CHECK("softmax_rows_backward");
}

// ---------------------------------------------------------------- rmsnorm

template <class T> __device__ float rms_rstd(int64_t cols, const T* xr, float eps, float* shared) {
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = load(xr, c);
    s += v * v;
  }
  return rsqrtf(block_reduce(s, Sum{}, shared) / float(cols) + eps);
}

template <class T> __global__ void rmsnorm_kernel(int64_t cols, const T* x, const T* g, float eps, T* y, T* rstd) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float r = rms_rstd(cols, x + base, eps, shared);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) store(y, base + c, load(x, base + c) * r * load(g, c));
  if (threadIdx.x == 0) store(rstd, blockIdx.x, r);
}

template <class T>
__global__ void rmsnorm_backward_kernel(int64_t cols, const T* x, const T* g, const T* rstd, const T* gy, const T* gres,
                                        T* gx) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float r = load(rstd, blockIdx.x);
  float d = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) d += load(g, c) * load(gy, base + c) * load(x, base + c);
  d = block_reduce(d, Sum{}, shared);
  const float k = r * r * r * d / float(cols);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store(gx, base + c,
          r * load(g, c) * load(gy, base + c) - load(x, base + c) * k + (gres ? load(gres, base + c) : 0.f));
}

// ---- warp-per-row versions (cols a multiple of kVec<T>, pointers aligned: rows_vec_ok)
constexpr int kRowsPerBlock = 8;  // warps of a 256-thread block

template <class T> bool rows_vec_ok(int64_t cols, std::initializer_list<const void*> ptrs) {
  if (cols % kVec<T> || cols / kVec<T> > 32 * 64) return false;
  for (const void* q : ptrs)
    if (q && !aligned16(q)) return false;
  return true;
}
inline unsigned warp_rows_grid(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

template <class T>
__global__ void rmsnorm_warp_kernel(int64_t rows, int64_t cols, const T* x, const T* g, float eps, T* y, T* rstd) {
  constexpr int V = kVec<T>;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave: the shuffles below stay full-warp
  const int lane = threadIdx.x & 31;
  const T* xr = x + row * cols;
  float s = 0.f;
  for (int64_t c = lane * V; c < cols; c += 32 * V) {
    float v[V];
    load_vec(xr, c, v);
#pragma unroll
    for (int k = 0; k < V; ++k) s += v[k] * v[k];
  }
  const float r = rsqrtf(warp_reduce(s, Sum{}) / float(cols) + eps);
  for (int64_t c = lane * V; c < cols; c += 32 * V) {
    float v[V], w[V];
    load_vec(xr, c, v);
    load_vec(g, c, w);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] *= r * w[k];
    store_vec(y, row * cols + c, v);
  }
  if (lane == 0) store(rstd, row, r);
}

// Backward, warp per row, NV vectors a lane (rows up to 32 NV V long, held in registers between
// the row's dot product and its output). A block's warps take the rows of one chunk in turn and
// also add up, per column, the gain gradient gy x r and (ResSum) the residual gradient gres (the
// block's output bias gradient, when the caller wants it); the 8 warps' sums meet in shared
// memory in a fixed order and leave as one partial row per block for finish_columns.
template <class T, int NV, bool ResSum>
__global__ void rmsnorm_backward_warp_kernel(int64_t rows, int64_t cols, int64_t chunk, const T* x, const T* g,
                                             const T* rstd, const T* gy, const T* gres, T* gx, float* part_gain,
                                             float* part_res) {
  constexpr int V = kVec<T>;
  __shared__ float buf[kRowsPerBlock][32 * NV * V];
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  float sg[NV][V] = {}, sr[NV][V] = {};
  const int64_t r0 = int64_t(blockIdx.x) * chunk, r1 = min(rows, r0 + chunk);
  for (int64_t row = r0 + warp; row < r1; row += kRowsPerBlock) {
    const int64_t base = row * cols;
    const float r = load(rstd, row);
    float xv[NV][V], gv[NV][V], res[NV][V] = {}, d = 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {  // every load of the row first (gres too): one round trip a row
      const int64_t c = int64_t(lane + 32 * j) * V;
      if (c >= cols) continue;
      float w[V];
      load_vec(x, base + c, xv[j]);
      load_vec(gy, base + c, gv[j]);
      if (gres) load_vec(gres, base + c, res[j]);
      load_vec(g, c, w);
#pragma unroll
      for (int k = 0; k < V; ++k) d += w[k] * gv[j][k] * xv[j][k];
    }
    const float kk = r * r * r * warp_reduce(d, Sum{}) / float(cols);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int64_t c = int64_t(lane + 32 * j) * V;
      if (c >= cols) continue;
      float w[V], out[V];
      load_vec(g, c, w);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        out[k] = r * w[k] * gv[j][k] - xv[j][k] * kk + res[j][k];
        sg[j][k] += gv[j][k] * xv[j][k] * r;
        if (ResSum) sr[j][k] += res[j][k];
      }
      store_vec(gx, base + c, out);
    }
  }
  for (int pass = 0; pass < (ResSum ? 2 : 1); ++pass) {
#pragma unroll
    for (int j = 0; j < NV; ++j)
#pragma unroll
      for (int k = 0; k < V; ++k) buf[warp][(lane + 32 * j) * V + k] = pass == 0 ? sg[j][k] : sr[j][k];
    __syncthreads();
    float* part = pass == 0 ? part_gain : part_res;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float t = 0.f;
      for (int w = 0; w < kRowsPerBlock; ++w) t += buf[w][c];
      part[int64_t(blockIdx.x) * cols + c] = t;
    }
    __syncthreads();
  }
}

// gg[c] = sum_r gy[r, c] x[r, c] rstd[r]
template <class T> struct RmsGainGrad {
  const T *x, *gy, *rstd;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const {
    return load(gy, r * cols + c) * load(x, r * cols + c) * load(rstd, r);
  }
};

template <class T> void rmsnorm(int64_t rows, int64_t cols, const T* x, const T* g, double eps, T* y, T* rstd) {
  if (rows <= 0) return;
  if (rows_vec_ok<T>(cols, {x, g, y})) {
    rmsnorm_warp_kernel<<<warp_rows_grid(rows), 32 * kRowsPerBlock, 0, stream()>>>(rows, cols, x, g, float(eps), y,
                                                                                  rstd);
    AVEY_LAUNCH_CHECK("rmsnorm");
    return;
  }
  rmsnorm_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, g, float(eps), y, rstd);
  AVEY_LAUNCH_CHECK("rmsnorm");
}
template <class T> void rmsnorm_backward(const RmsNormBackward<T>& args) {
  // (named copies rather than structured bindings: C++17 lambdas cannot capture those)
  const int64_t rows = args.rows, cols = args.cols;
  const T *x = args.x, *g = args.g, *rstd = args.rstd, *gy = args.gy, *gres = args.gres;
  T *gx = args.gx, *gg = args.gg, *gres_sum = args.gres_sum;
  const int64_t nv = (cols / kVec<T> + 31) / 32;
  if (rows > 0 && rows_vec_ok<T>(cols, {x, g, gy, gres, gx}) && nv <= 4) {
    const int64_t chunk = 8 * kRowsPerBlock, blocks = (rows + chunk - 1) / chunk;
    if (blocks > INT32_MAX) fail("rmsnorm_backward", "too many rows", __FILE__, __LINE__);
    Scratch part(size_t(blocks * cols) * sizeof(float) * (gres_sum ? 2 : 1));
    float* part_gain = part.as<float>();
    float* part_res = gres_sum ? part_gain + blocks * cols : nullptr;
    auto launch = [&](auto nv_c, auto res_c) {
      rmsnorm_backward_warp_kernel<T, decltype(nv_c)::value, decltype(res_c)::value>
          <<<unsigned(blocks), 32 * kRowsPerBlock, 0, stream()>>>(rows, cols, chunk, x, g, rstd, gy, gres, gx,
                                                                  part_gain, part_res);
    };
    auto with_res = [&](auto nv_c) {
      if (gres_sum) launch(nv_c, std::true_type{});
      else launch(nv_c, std::false_type{});
    };
    switch (nv) {
      case 1: with_res(std::integral_constant<int, 1>{}); break;
      case 2: with_res(std::integral_constant<int, 2>{}); break;
      case 3: with_res(std::integral_constant<int, 3>{}); break;
      default: with_res(std::integral_constant<int, 4>{}); break;
    }
    AVEY_LAUNCH_CHECK("rmsnorm_backward");
    finish_columns(blocks, cols, part_gain, gg);
    if (gres_sum) finish_columns(blocks, cols, part_res, gres_sum);
    return;
  }
  column_sums(rows, cols, RmsGainGrad<T>{x, gy, rstd, cols}, gg);
  if (gres_sum) column_sums(rows, cols, LoadAt<T>{gres, cols}, gres_sum);
  if (rows <= 0) return;
  rmsnorm_backward_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, g, rstd, gy, gres, gx);
  AVEY_LAUNCH_CHECK("rmsnorm_backward");
}
// ---------------------------------------------------------------- layernorm

template <class T> __device__ float row_mean(int64_t cols, const T* xr, float* shared) {
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += load(xr, c);
  return block_reduce(s, Sum{}, shared) / float(cols);
}

template <class T>
__global__ void layernorm_kernel(int64_t cols, const T* x, const T* g, const T* b, float eps, T* y, T* mean, T* rstd) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float mu = row_mean(cols, x + base, shared);
  float v = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float d = load(x, base + c) - mu;
    v += d * d;
  }
  const float r = rsqrtf(block_reduce(v, Sum{}, shared) / float(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store(y, base + c, (load(x, base + c) - mu) * r * load(g, c) + load(b, c));
  if (threadIdx.x == 0) {
    store(mean, blockIdx.x, mu);
    store(rstd, blockIdx.x, r);
  }
}

// Writes gx, and the row's (mean, rstd) in fp32 to `stats` for the gain gradient.
template <class T>
__global__ void layernorm_backward_kernel(int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                                          const T* gy, T* gx, float* stats) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float mu = std::is_same_v<T, bf16> ? row_mean(cols, x + base, shared) : load(mean, blockIdx.x);
  const float r = load(rstd, blockIdx.x);
  float sd = 0.f, sdx = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float d = load(g, c) * load(gy, base + c);
    sd += d;
    sdx += d * (load(x, base + c) - mu) * r;
  }
  const float md = block_reduce(sd, Sum{}, shared) / float(cols);
  const float mdx = block_reduce(sdx, Sum{}, shared) / float(cols);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float xh = (load(x, base + c) - mu) * r;
    store(gx, base + c, r * (load(g, c) * load(gy, base + c) - md - xh * mdx));
  }
  if (threadIdx.x == 0) {
    stats[2 * blockIdx.x] = mu;
    stats[2 * blockIdx.x + 1] = r;
  }
}

template <class T> struct LnGainGrad {  // gy * xhat
  const T *x, *gy;
  const float* stats;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const {
    return load(gy, r * cols + c) * (load(x, r * cols + c) - stats[2 * r]) * stats[2 * r + 1];
  }
};
template <class T> struct LnBiasGrad {  // gy
  const T* gy;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const { return load(gy, r * cols + c); }
};

template <class T>
void layernorm(int64_t rows, int64_t cols, const T* x, const T* g, const T* b, double eps, T* y, T* mean, T* rstd) {
  if (rows <= 0) return;
  layernorm_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, g, b, float(eps), y, mean, rstd);
  AVEY_LAUNCH_CHECK("layernorm");
}

template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                        const T* gy, T* gx, T* gg, T* gb) {
  Scratch stats(size_t(2 * (rows > 0 ? rows : 1)) * sizeof(float));
  if (rows > 0) {
    layernorm_backward_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, g, mean, rstd, gy, gx,
                                                                                       stats.as<float>());
    AVEY_LAUNCH_CHECK("layernorm_backward");
  }
  column_sums(rows, cols, LnGainGrad<T>{x, gy, stats.as<float>(), cols}, gg);
  column_sums(rows, cols, LnBiasGrad<T>{gy, cols}, gb);
}

// ---------------------------------------------------------------- l2norm_rows

template <class T> __device__ float row_sum_squares(int64_t cols, const T* xr, float* shared) {
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = load(xr, c);
    s += v * v;
  }
  return block_reduce(s, Sum{}, shared);
}

template <class T> __global__ void l2norm_kernel(NormEps mode, int64_t cols, const T* x, float eps, T* y, T* denom) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float d = l2_denominator(mode, row_sum_squares(cols, x + base, shared), eps), inv = l2_inverse(d);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) store(y, base + c, load(x, base + c) * inv);
  if (threadIdx.x == 0) store(denom, blockIdx.x, d);
}

// The norm is recomputed from x in fp32 (backward needs s itself, not only the denominator).
template <class T>
__global__ void l2norm_backward_kernel(NormEps mode, int64_t cols, const T* x, float eps, const T* gy, T* gx) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  const float ss = row_sum_squares(cols, x + base, shared), s = sqrtf(ss);
  float p = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) p += load(gy, base + c) * load(x, base + c);
  p = block_reduce(p, Sum{}, shared);
  const float d = l2_denominator(mode, ss, eps), inv = l2_inverse(d);
  float k = 0.f;  // gx = gy / d - k x
  if (mode == NormEps::Inside) k = p * inv * inv * inv;
  else if (s > 0.f && (mode == NormEps::Outside || s > eps)) k = p * inv * inv / s;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store(gx, base + c, load(gy, base + c) * inv - k * load(x, base + c));
}

template <class T>
__global__ void l2norm_warp_kernel(NormEps mode, int64_t rows, int64_t cols, const T* x, float eps, T* y, T* denom) {
  constexpr int V = kVec<T>;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t base = row * cols;
  float s = 0.f;
  for (int64_t c = lane * V; c < cols; c += 32 * V) {
    float v[V];
    load_vec(x, base + c, v);
#pragma unroll
    for (int k = 0; k < V; ++k) s += v[k] * v[k];
  }
  const float d = l2_denominator(mode, warp_reduce(s, Sum{}), eps), inv = l2_inverse(d);
  for (int64_t c = lane * V; c < cols; c += 32 * V) {
    float v[V];
    load_vec(x, base + c, v);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] *= inv;
    store_vec(y, base + c, v);
  }
  if (lane == 0) store(denom, row, d);
}

// The rows of g that make one row's gradient: row `first` itself, or (k1 > k0) the sum of rows
// first, src[k0 + 1], ..., src[k1 - 1], in that order (a row map's range, first = src[k0],
// read once per row); none (k1 == k0) is a zero row.
struct RowSum {
  const int32_t* src;
  int32_t k0, k1;
  int64_t first;
};
__device__ __forceinline__ RowSum row_sum(const int32_t* ptr, const int32_t* src, int64_t row) {
  if (!ptr) return {nullptr, 0, 1, row};
  const int32_t k0 = ptr[row], k1 = ptr[row + 1];
  return {src, k0, k1, k1 > k0 ? int64_t(src[k0]) : 0};
}
// Columns c.. of that row of g.
template <class T, int V>
__device__ __forceinline__ void row_vec(const T* g, const RowSum& rs, int64_t cols, int64_t c, float (&v)[V]) {
#pragma unroll
  for (int e = 0; e < V; ++e) v[e] = 0.f;
  if (rs.k1 == rs.k0) return;
  load_vec(g, rs.first * cols + c, v);
#pragma unroll 4
  for (int32_t k = rs.k0 + 1; k < rs.k1; ++k) {  // a padding row's many rows: loads kept in flight
    float u[V];
    load_vec(g, int64_t(rs.src[k]) * cols + c, u);
#pragma unroll
    for (int e = 0; e < V; ++e) v[e] += u[e];
  }
}

// With a row map: row r's gy is the sum of gy's rows the map lists, and extra's same rows are
// summed and added to gx (l2norm_rows_backward with a row map). A warp per row, NV vectors a lane
// (rows up to 32 NV V long): x, the summed gy and extra are read once and held in registers
// between the row's two dot products and its output.
template <class T, int NV>
__global__ void l2norm_backward_warp_kernel(NormEps mode, int64_t rows, int64_t cols, const T* x, float eps,
                                            const T* gy, T* gx, const int32_t* ptr, const int32_t* src,
                                            const T* extra) {
  constexpr int V = kVec<T>;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t base = row * cols;
  const RowSum rs = row_sum(ptr, src, row);
  float xv[NV][V], gv[NV][V], ev[NV][V], ss = 0.f, p = 0.f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int64_t c = int64_t(lane + 32 * j) * V;
    if (c >= cols) continue;
    load_vec(x, base + c, xv[j]);
    row_vec(gy, rs, cols, c, gv[j]);
    if (extra) row_vec(extra, rs, cols, c, ev[j]);
#pragma unroll
    for (int k = 0; k < V; ++k) ss += xv[j][k] * xv[j][k], p += gv[j][k] * xv[j][k];
  }
  ss = warp_reduce(ss, Sum{});
  p = warp_reduce(p, Sum{});
  const float s = sqrtf(ss), d = l2_denominator(mode, ss, eps), inv = l2_inverse(d);
  float k = 0.f;  // gx = gy / d - k x
  if (mode == NormEps::Inside) k = p * inv * inv * inv;
  else if (s > 0.f && (mode == NormEps::Outside || s > eps)) k = p * inv * inv / s;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int64_t c = int64_t(lane + 32 * j) * V;
    if (c >= cols) continue;
#pragma unroll
    for (int e = 0; e < V; ++e) gv[j][e] = gv[j][e] * inv - k * xv[j][e] + (extra ? ev[j][e] : 0.f);
    store_vec(gx, base + c, gv[j]);
  }
}

// Launches the warp kernel with NV = the vectors a lane holds (rows of up to 128 vectors).
constexpr int64_t kMaxWarpRowVectors = 32 * 4;
template <class T, class... Args> void launch_l2norm_backward_warp(int64_t rows, int64_t cols, Args... args) {
  const int64_t nv = (cols / kVec<T> + 31) / 32;
  auto go = [&](auto nv_c) {
    l2norm_backward_warp_kernel<T, decltype(nv_c)::value><<<warp_rows_grid(rows), 32 * kRowsPerBlock, 0, stream()>>>(
        args...);
  };
  switch (nv) {
    case 1: go(std::integral_constant<int, 1>{}); break;
    case 2: go(std::integral_constant<int, 2>{}); break;
    case 3: go(std::integral_constant<int, 3>{}); break;
    default: go(std::integral_constant<int, 4>{}); break;
  }
}

// The rows that sum many rows of the map (a padding row: one row of every context that has it)
// take one block each, so the sums are not one warp's chain of dependent loads: warp w adds the
// sources k0 + w, k0 + w + kRowsPerBlock, ... of gy and of extra (fp32), the block then adds
// the warps' partial rows in order w = 0, 1, ... in shared memory (a fixed tree: the same bits
// every run), and finishes the row like the warp kernel. Shared memory: 2 cols fp32 for the
// summed rows, 2 x kRowsPerBlock x 32 x V fp32 for one column chunk's partials.
template <class T>
__global__ void l2norm_backward_summed_kernel(NormEps mode, int64_t cols, const T* x, float eps, const T* gy, T* gx,
                                              const int32_t* ptr, const int32_t* src, const T* extra) {
  constexpr int V = kVec<T>, kChunk = 32 * V;
  extern __shared__ float smem[];
  float* row_g = smem;                    // [cols]: the summed gy row
  float* row_e = smem + cols;             // [cols]: the summed extra row
  float* part = smem + 2 * cols;          // [2][kRowsPerBlock][kChunk]
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int32_t k0 = ptr[row], k1 = ptr[row + 1];
  for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
    const int64_t c = c0 + lane * V;
    float gv[V] = {}, ev[V] = {};
    if (c < cols) {
#pragma unroll 4
      for (int32_t k = k0 + warp; k < k1; k += kRowsPerBlock) {
        float u[V];
        load_vec(gy, int64_t(src[k]) * cols + c, u);
#pragma unroll
        for (int e = 0; e < V; ++e) gv[e] += u[e];
        if (extra) {
          load_vec(extra, int64_t(src[k]) * cols + c, u);
#pragma unroll
          for (int e = 0; e < V; ++e) ev[e] += u[e];
        }
      }
    }
#pragma unroll
    for (int e = 0; e < V; ++e) part[warp * kChunk + lane * V + e] = gv[e], part[(kRowsPerBlock + warp) * kChunk + lane * V + e] = ev[e];
    __syncthreads();
    for (int i = threadIdx.x; i < kChunk && c0 + i < cols; i += blockDim.x) {
      float sg = 0.f, se = 0.f;
      for (int w = 0; w < kRowsPerBlock; ++w) sg += part[w * kChunk + i], se += part[(kRowsPerBlock + w) * kChunk + i];
      row_g[c0 + i] = sg, row_e[c0 + i] = se;
    }
    __syncthreads();
  }
  const int64_t base = row * cols;
  float ss = 0.f, p = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xv = load(x, base + c);
    ss += xv * xv, p += row_g[c] * xv;
  }
  ss = block_reduce(ss, Sum{}, shared);
  p = block_reduce(p, Sum{}, shared);
  const float s = sqrtf(ss), d = l2_denominator(mode, ss, eps), inv = l2_inverse(d);
  float k = 0.f;  // gx = gy / d - k x
  if (mode == NormEps::Inside) k = p * inv * inv * inv;
  else if (s > 0.f && (mode == NormEps::Outside || s > eps)) k = p * inv * inv / s;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store(gx, base + c, row_g[c] * inv - k * load(x, base + c) + row_e[c]);
}

template <class T>
void l2norm_rows(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom) {
  if (rows <= 0) return;
  if (rows_vec_ok<T>(cols, {x, y})) {
    l2norm_warp_kernel<<<warp_rows_grid(rows), 32 * kRowsPerBlock, 0, stream()>>>(mode, rows, cols, x, float(eps), y,
                                                                                 denom);
    AVEY_LAUNCH_CHECK("l2norm_rows");
    return;
  }
  l2norm_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(mode, cols, x, float(eps), y, denom);
  AVEY_LAUNCH_CHECK("l2norm_rows");
}

namespace {

template <class T> void plain_l2norm_backward(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, const T* gy, T* gx) {
  if (rows_vec_ok<T>(cols, {x, gy, gx}) && cols <= kMaxWarpRowVectors * kVec<T>) {
    launch_l2norm_backward_warp<T>(rows, cols, mode, rows, cols, x, float(eps), gy, gx, (const int32_t*)nullptr,
                                   (const int32_t*)nullptr, (const T*)nullptr);
    AVEY_LAUNCH_CHECK("l2norm_rows_backward");
    return;
  }
  l2norm_backward_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(mode, cols, x, float(eps), gy, gx);
  AVEY_LAUNCH_CHECK("l2norm_rows_backward");
}

// With a row map and/or extra: rows whole 16-byte vectors.
template <class T>
void mapped_l2norm_backward(NormEps mode, int64_t rows, int64_t summed_rows, int64_t cols, const T* x, double eps,
                            const int32_t* ptr, const int32_t* src, const T* gy, const T* extra, T* gx) {
  if (!rows_vec_ok<T>(cols, {x, gy, gx, extra}) || cols > kMaxWarpRowVectors * kVec<T>) {
    // rows the warp kernels cannot take: the sums gathered first (map_rows), then the plain
    // backward, then extra added
    Scratch g_sum(ptr ? size_t(rows * cols) * sizeof(T) : 1), e_sum(ptr && extra ? size_t(rows * cols) * sizeof(T) : 1);
    const T* g = gy;
    const T* e = extra;
    if (ptr) map_rows<T>(rows, cols, ptr, src, gy, g_sum.as<T>()), g = g_sum.as<T>();
    if (ptr && extra) map_rows<T>(rows, cols, ptr, src, extra, e_sum.as<T>()), e = e_sum.as<T>();
    plain_l2norm_backward(mode, rows, cols, x, eps, g, gx);
    if (e) binary<T>(Binary::Add, Broadcast::None, rows, cols, gx, e, gx);
    return;
  }
  summed_rows = ptr ? std::min(summed_rows, rows) : 0;
  if (summed_rows > 0) {
    const size_t smem = (2 * size_t(cols) + 2 * kRowsPerBlock * 32 * kVec<T>) * sizeof(float);
    if (smem > 48 * 1024) fail("l2norm_rows_backward", "rows too long for the summed rows' kernel", __FILE__, __LINE__);
    l2norm_backward_summed_kernel<T><<<unsigned(summed_rows), 32 * kRowsPerBlock, smem, stream()>>>(
        mode, cols, x, float(eps), gy, gx, ptr, src, extra);
    AVEY_LAUNCH_CHECK("l2norm_rows_backward");
  }
  const int64_t rest = rows - summed_rows;
  if (rest <= 0) return;
  launch_l2norm_backward_warp<T>(rest, cols, mode, rest, cols, x + summed_rows * cols, float(eps), gy,
                                 gx + summed_rows * cols, ptr ? ptr + summed_rows : nullptr, src, extra);
  AVEY_LAUNCH_CHECK("l2norm_rows_backward");
}

}  // namespace

// ---------------------------------------------------------------- L1 normalisation
// A block per row; the row's sum of |x| (and of gy x) by the block tree, in fp32.

template <class T> __global__ void l1norm_kernel(int64_t cols, const T* x, float eps, T* y, T* denom) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += fabsf(load(x, base + c));
  const float d = fmaxf(block_reduce(s, Sum{}, shared), eps), inv = 1.f / d;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) store(y, base + c, load(x, base + c) * inv);
  if (threadIdx.x == 0) store(denom, blockIdx.x, d);
}

template <class T> __global__ void l1norm_backward_kernel(int64_t cols, const T* x, float eps, const T* gy, T* gx) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * cols;
  float s = 0.f, p = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = load(x, base + c);
    s += fabsf(v), p += load(gy, base + c) * v;
  }
  s = block_reduce(s, Sum{}, shared);
  p = block_reduce(p, Sum{}, shared);
  const float d = fmaxf(s, eps), inv = 1.f / d, k = s > eps ? p * inv * inv : 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = load(x, base + c), sign = v > 0.f ? 1.f : v < 0.f ? -1.f : 0.f;
    store(gx, base + c, load(gy, base + c) * inv - sign * k);
  }
}

template <class T> void l1norm_rows(int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom) {
  if (rows <= 0) return;
  l1norm_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, float(eps), y, denom);
  AVEY_LAUNCH_CHECK("l1norm_rows");
}

template <class T>
void l1norm_rows_backward(int64_t rows, int64_t cols, const T* x, double eps, const T* gy, T* gx) {
  if (rows <= 0) return;
  l1norm_backward_kernel<<<rows_grid(rows), threads_for_row(cols), 0, stream()>>>(cols, x, float(eps), gy, gx);
  AVEY_LAUNCH_CHECK("l1norm_rows_backward");
}

template <class T> void l2norm_rows_backward(const L2NormBackward<T>& a) {
  if (a.rows <= 0) return;
  if (a.ptr || a.extra)
    mapped_l2norm_backward(a.mode, a.rows, a.summed_rows, a.cols, a.x, a.eps, a.ptr, a.src, a.gy, a.extra, a.gx);
  else
    plain_l2norm_backward(a.mode, a.rows, a.cols, a.x, a.eps, a.gy, a.gx);
}

AVEY_INSTANTIATE_CUDA(softmax_rows)
AVEY_INSTANTIATE_CUDA(softmax_rows_backward)
AVEY_INSTANTIATE_CUDA(rmsnorm)
AVEY_INSTANTIATE_CUDA(rmsnorm_backward)
AVEY_INSTANTIATE_CUDA(layernorm)
AVEY_INSTANTIATE_CUDA(layernorm_backward)
AVEY_INSTANTIATE_CUDA(l2norm_rows)
AVEY_INSTANTIATE_CUDA(l2norm_rows_backward)
AVEY_INSTANTIATE_CUDA(l1norm_rows)
AVEY_INSTANTIATE_CUDA(l1norm_rows_backward)

}  // namespace kernels::cuda
