// Reductions: sum of everything, and sum / max over each row's columns.
//
// sum_all: pass 1 gives each of a fixed number of blocks (set by n alone) a grid-stride share
// of the elements; a block sums its share with a fixed tree (warp shuffles, then the warp sums
// in order) into one partial. Pass 2 is one block doing the same over the partials.
// row_sums / row_max: one block per row (row_max: one warp per short row), each thread a
// strided share of the row's columns (row_sums: 16-byte vectors where the row allows), then the
// block tree. max keeps (value, index) and the smaller index on ties, so the first maximum wins
// as on the CPU. All in fp32; no atomics, so the results repeat bit for bit.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"

namespace kernels::cuda {

template <class T> __global__ void sum_partials(int64_t n, const T* x, float* partial) {
  __shared__ float shared[32];
  float s = 0.f;
  AVEY_GRID_STRIDE(i, n) s += load(x, i);
  s = block_reduce(s, Sum{}, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T> __global__ void sum_finish(int64_t parts, const float* partial, T* y) {
  __shared__ float shared[32];
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) s += partial[i];
  s = block_reduce(s, Sum{}, shared);
  if (threadIdx.x == 0) store(y, 0, s);
}

template <class T> void sum_all(int64_t n, const T* x, T* y) {
  const unsigned parts = n > 0 ? (blocks_for(n) < 1024 ? blocks_for(n) : 1024) : 1;
  Scratch partial(parts * sizeof(float));
  sum_partials<<<parts, kThreads, 0, stream()>>>(n, x, partial.as<float>());
  AVEY_LAUNCH_CHECK("sum_all (partials)");
  sum_finish<<<1, 1024, 0, stream()>>>(parts, partial.as<float>(), y);
  AVEY_LAUNCH_CHECK("sum_all (finish)");
}

// One block per row; W columns a thread (one 16-byte vector when the row is whole vectors, else
// one element), strided by the block; each thread keeps W sums, adds them in order, then the tree.
template <int W, class T> __global__ void row_sums_kernel(int64_t cols, const T* x, T* y) {
  __shared__ float shared[32];
  const T* row = x + int64_t(blockIdx.x) * cols;
  float s[W] = {}, v[W];
  for (int64_t c = int64_t(threadIdx.x) * W; c < cols; c += int64_t(blockDim.x) * W) {
    load_n<W>(row, c, v);
#pragma unroll
    for (int e = 0; e < W; ++e) s[e] += v[e];
  }
#pragma unroll
  for (int e = 1; e < W; ++e) s[0] += s[e];
  const float t = block_reduce(s[0], Sum{}, shared);
  if (threadIdx.x == 0) store(y, blockIdx.x, t);
}

template <class T> void row_sums(int64_t rows, int64_t cols, const T* x, T* y) {
  if (rows <= 0) return;
  constexpr int V = kVec<T>;
  if (cols % V == 0 && aligned16(x))  // about four vectors a thread
    row_sums_kernel<V><<<unsigned(rows), threads_for_row(cols / V * 4), 0, stream()>>>(cols, x, y);
  else
    row_sums_kernel<1><<<unsigned(rows), threads_for_row(cols), 0, stream()>>>(cols, x, y);
  AVEY_LAUNCH_CHECK("row_sums");
}

// (value, index) of the larger; on equal values the smaller index (NaN is never the larger).
__device__ __forceinline__ void better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// A thread's strided share of a row of x (the threads of a warp or a block, `step` apart), then
// the warp's tree: every lane gets the warp's (value, index).
template <class T>
__device__ __forceinline__ void warp_max(const T* row, int64_t cols, int first, int step, float& v, int& idx) {
  v = -INFINITY, idx = INT_MAX;
  for (int64_t c = first; c < cols; c += step) better(v, idx, load(row, c), int(c));
  for (int o = 16; o > 0; o >>= 1) better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
}

// Row r's result: its value at idx (column 0 for a row of NaNs), and idx.
template <class T> __device__ __forceinline__ void max_result(const T* row, int64_t r, int idx, T* y, int32_t* argmax) {
  if (idx == INT_MAX) idx = 0;
  store(y, r, load(row, idx));
  argmax[r] = idx;
}

// Long rows: one block per row, then the warps' results in order.
template <class T> __global__ void row_max_kernel(int64_t cols, const T* x, T* y, int32_t* argmax) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const T* row = x + int64_t(blockIdx.x) * cols;
  float v;
  int idx;
  warp_max(row, cols, int(threadIdx.x), int(blockDim.x), v, idx);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = idx;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w) better(v, idx, sv[w], si[w]);
    max_result(row, blockIdx.x, idx, y, argmax);
  }
}

// Short rows (at most kWarpRowCols): one warp per row, kRowsPerBlock rows a block (a block per
// row of 64 columns left the GPU waiting on launches of tiny blocks).
constexpr int64_t kWarpRowCols = 512;
constexpr int kRowsPerBlock = 8;
template <class T> __global__ void row_max_warp_kernel(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (r >= rows) return;
  const T* row = x + r * cols;
  float v;
  int idx;
  warp_max(row, cols, int(threadIdx.x & 31), 32, v, idx);
  if ((threadIdx.x & 31) == 0) max_result(row, r, idx, y, argmax);
}

template <class T> void row_max(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax) {
  if (rows <= 0 || cols <= 0) return;
  if (cols <= kWarpRowCols)
    row_max_warp_kernel<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), 32 * kRowsPerBlock, 0, stream()>>>(
        rows, cols, x, y, argmax);
  else
    row_max_kernel<<<unsigned(rows), threads_for_row(cols), 0, stream()>>>(cols, x, y, argmax);
  AVEY_LAUNCH_CHECK("row_max");
}

AVEY_INSTANTIATE_CUDA(sum_all)
AVEY_INSTANTIATE_CUDA(row_sums)
AVEY_INSTANTIATE_CUDA(row_max)

}  // namespace kernels::cuda
