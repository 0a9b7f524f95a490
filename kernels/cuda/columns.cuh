// Deterministic column sums: out[c] = sum over r of f(r, c), for a functor f(r, c) -> float.
// Used for the gradient of a broadcast row (a bias), and the gain gradients of the norms.
//
// Two passes, no atomics. Pass 1: the rows are cut into fixed chunks; one thread per (chunk,
// column) adds its chunk's rows in order (neighbouring threads read neighbouring columns, so
// loads coalesce) and writes a partial sum. Pass 2 (finish_columns, also used by kernels that
// write their own partial sums) adds each column's partial sums in a fixed tree; with one chunk,
// pass 1 writes the result itself. The chunking depends only on the shape, so the result is
// reproducible.
#pragma once
#include "kernels/cuda/common.cuh"

namespace kernels::cuda {

// x(k0) + x(k0 + step) + ... over k < k1, added one by one in that order from 0; whole batches
// of kSumBatch terms are read before they are added, so that many loads are in flight instead of
// one, and the last few terms one at a time. The same bits as the plain loop. (Guarding every
// term of a batch instead cost more than the loads when there are only a few terms.)
constexpr int kSumBatch = 16;
template <class X> __device__ __forceinline__ float sum_in_order(int64_t k0, int64_t k1, int64_t step, X x) {
  float s = 0.f;
  int64_t k = k0;
  for (; k + (kSumBatch - 1) * step < k1; k += kSumBatch * step) {
    float t[kSumBatch];
#pragma unroll
    for (int u = 0; u < kSumBatch; ++u) t[u] = x(k + u * step);
#pragma unroll
    for (int u = 0; u < kSumBatch; ++u) s += t[u];
  }
  for (; k < k1; k += step) s += x(k);
  return s;
}

// Pass 1, a thread per (chunk, column): the chunk's rows in order, into partial row blockIdx.y
// (O = float), or straight into the output when there is one chunk (O = T).
template <class F, class O>
__global__ void column_partials(int64_t rows, int64_t cols, int64_t chunk, F f, O* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(rows, r0 + chunk);
  float s = 0.f;
  for (int64_t r = r0; r < r1; ++r) s += f(r, c);
  store(partial, int64_t(blockIdx.y) * cols + c, s);
}

// Pass 2, a block of 32 x Y threads per 32 columns (Y = min(32, chunks)): thread (x, y) adds
// the partial sums y, y + Y, ... of column c0 + x in order, then row y = 0 adds the Y results in
// y order through shared memory. (One thread per column, adding hundreds of partial sums in a
// chain, left the GPU nearly idle: ~0.1 ms for 512 partial rows.)
template <class T>
__global__ void column_finish(int64_t chunks, int64_t cols, const float* partial, T* out) {
  __shared__ float s[32][33];
  const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float v = 0.f;
  if (c < cols) v = sum_in_order(threadIdx.y, chunks, blockDim.y, [&](int64_t k) { return partial[k * cols + c]; });
  s[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (unsigned y = 0; y < blockDim.y; ++y) t += s[y][threadIdx.x];
    store(out, c, t);
  }
}

template <class T> void finish_columns(int64_t chunks, int64_t cols, const float* partial, T* out) {
  if (cols == 0) return;
  const unsigned y = unsigned(chunks < 32 ? (chunks > 0 ? chunks : 1) : 32);
  if ((cols + 31) / 32 > INT32_MAX) fail("column_finish", "too many columns", __FILE__, __LINE__);
  column_finish<<<unsigned((cols + 31) / 32), dim3(32, y), 0, stream()>>>(chunks, cols, partial, out);
  AVEY_LAUNCH_CHECK("column_finish");
}

template <class T> struct LoadAt {  // f(r, c) = g[r, c]: plain column sums of a [rows, cols] matrix
  const T* g;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const { return load(g, r * cols + c); }
};

template <class T, class F> void column_sums(int64_t rows, int64_t cols, F f, T* out) {
  if (cols == 0) return;
  const int64_t chunk = rows / 65535 + 128;  // chunks <= 65535 (the grid's y limit)
  const int64_t chunks = rows > 0 ? (rows + chunk - 1) / chunk : 1;
  dim3 grid(unsigned((cols + kThreads - 1) / kThreads), unsigned(chunks));
  if (chunks == 1) {  // the one partial row is the result (the same bits as finishing it)
    column_partials<<<grid, kThreads, 0, stream()>>>(rows, cols, chunk, f, out);
    AVEY_LAUNCH_CHECK("column_partials");
    return;
  }
  Scratch partial(size_t(chunks * cols) * sizeof(float));
  column_partials<<<grid, kThreads, 0, stream()>>>(rows, cols, chunk, f, partial.as<float>());
  AVEY_LAUNCH_CHECK("column_partials");
  finish_columns(chunks, cols, partial.as<float>(), out);
}

}  // namespace kernels::cuda
