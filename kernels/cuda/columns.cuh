// Deterministic column sums: out[c] = sum over r of f(r, c), for a functor f(r, c) -> float.
// Used for the gradient of a broadcast row (a bias), and the gain gradients of the norms.
//
// Two passes, no atomics. Pass 1: the rows are cut into fixed chunks; one thread per (chunk,
// column) adds its chunk's rows in order (neighbouring threads read neighbouring columns, so
// loads coalesce) and writes a partial sum. Pass 2: one thread per column adds the partial
// sums in chunk order. The chunking depends only on the shape, so the result is reproducible.
#pragma once
#include "kernels/cuda/common.cuh"

namespace kernels::cuda {

template <class F>
__global__ void column_partials(int64_t rows, int64_t cols, int64_t chunk, F f, float* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(rows, r0 + chunk);
  float s = 0.f;
  for (int64_t r = r0; r < r1; ++r) s += f(r, c);
  partial[int64_t(blockIdx.y) * cols + c] = s;
}

template <class T>
__global__ void column_finish(int64_t chunks, int64_t cols, const float* partial, T* out) {
  AVEY_GRID_STRIDE(c, cols) {
    float s = 0.f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
    store(out, c, s);
  }
}

template <class T, class F> void column_sums(int64_t rows, int64_t cols, F f, T* out) {
  if (cols == 0) return;
  const int64_t chunk = rows / 65535 + 128;  // chunks <= 65535 (the grid's y limit)
  const int64_t chunks = rows > 0 ? (rows + chunk - 1) / chunk : 1;
  Scratch partial(size_t(chunks * cols) * sizeof(float));
  dim3 grid(unsigned((cols + kThreads - 1) / kThreads), unsigned(chunks));
  column_partials<<<grid, kThreads, 0, stream()>>>(rows, cols, chunk, f, partial.as<float>());
  AVEY_LAUNCH_CHECK("column_partials");
  column_finish<<<blocks_for(cols), kThreads, 0, stream()>>>(chunks, cols, partial.as<float>(), out);
  AVEY_LAUNCH_CHECK("column_finish");
}

}  // namespace kernels::cuda
