// Element-wise kernels: binary ops with broadcasting, scale, add_scalar, axpy, the unary
// functions and their derivatives, tril; reduce_to, the sum that undoes a broadcast; and mul_pair
// (two products sharing one operand, one vector a thread).
//
// Mapping: one thread per element in a grid-stride loop (grid capped, each thread takes every
// gridDim*blockDim-th element). Each element is independent, so the result does not depend on
// the launch shape. Values are loaded to fp32, computed, and rounded once on store.
// The kernels that move the large activations (binary, and Avey's enricher kernels in
// avey/kernels/cuda/enricher.cu) take
// one 16-byte vector a thread instead (kVec elements, common.cuh) when the row length, the
// column parts and the pointers allow it: the scalar 2-byte version reached about 1.3 TB/s of
// the H100's ~3 TB/s. Their indices are 32-bit (a host check routes larger tensors to the
// scalar path): 64-bit division per element was a large part of the scalar kernels' time.
#include <algorithm>
#include <initializer_list>

#include "kernels/cuda/columns.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"
#include "kernels/elementwise_math.h"

namespace kernels::cuda {

// ---------------------------------------------------------------- binary

template <class T>
__global__ void binary_kernel(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y) {
  AVEY_GRID_STRIDE(i, rows * cols) {
    int64_t j = 0;  // b's element for a's element i
    switch (bc) {
      case Broadcast::None: j = i; break;
      case Broadcast::Row: j = i % cols; break;
      case Broadcast::Column: j = i / cols; break;
      case Broadcast::Scalar: j = 0; break;
    }
    store(y, i, apply(op, load(a, i), load(b, j)));
  }
}

// Vectorised: thread j takes elements [j V, j V + V) of one row (the row length is a multiple of
// V), so b's vector for a Row broadcast is b[(j % (cols / V)) V ...], and its scalar for a Column
// broadcast is b[j / (cols / V)].
template <class T>
__global__ void binary_vec_kernel(Binary op, Broadcast bc, uint32_t nvec, uint32_t cvec, const T* a, const T* b, T* y) {
  constexpr int V = kVec<T>;
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    float x[V], z[V];
    load_vec(a, int64_t(j) * V, x);
    if (bc == Broadcast::None) {
      load_vec(b, int64_t(j) * V, z);
    } else if (bc == Broadcast::Row) {
      load_vec(b, int64_t(j % cvec) * V, z);
    } else {
      const float s = load(b, bc == Broadcast::Column ? j / cvec : 0);
#pragma unroll
      for (int k = 0; k < V; ++k) z[k] = s;
    }
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] = apply(op, x[k], z[k]);
    store_vec(y, int64_t(j) * V, x);
  }
}

template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  constexpr int V = kVec<T>;
  const bool b_vectors = bc == Broadcast::None || bc == Broadcast::Row;  // else b is read one element at a time
  if (cols % V == 0 && n / V <= int64_t(UINT32_MAX) / 2 && aligned16(a) && (!b_vectors || aligned16(b)) &&
      aligned16(y)) {
    const int64_t nvec = n / V;
    binary_vec_kernel<<<blocks_for(nvec), kThreads, 0, stream()>>>(op, bc, uint32_t(nvec), uint32_t(cols / V), a, b,
                                                                   y);
    AVEY_LAUNCH_CHECK("binary");
    return;
  }
  binary_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(op, bc, rows, cols, a, b, y);
  AVEY_LAUNCH_CHECK("binary");
}

// ---------------------------------------------------------------- mul_pair
// ya = g (.) a and yb = g (.) b in one pass (g read once): the contextualizer's backward with no
// activation (dZ1 = dC (.) Yc, dYc = dC (.) Z1). g's rows are ldg apart (dC is a column window of
// block_body's [dC | dZh]); a, b, ya, yb are contiguous. Thread j takes one 16-byte vector of each.
template <class T>
__global__ void mul_pair_vec_kernel(uint32_t nvec, uint32_t cvec, uint32_t ldg_vec, const T* g, const T* a, const T* b,
                                    T* ya, T* yb) {
  constexpr int V = kVec<T>;
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    const uint32_t r = j / cvec, c = j - r * cvec;
    float x[V], u[V], w[V];
    load_vec(g, (int64_t(r) * ldg_vec + c) * V, x);
    load_vec(a, int64_t(j) * V, u);
    load_vec(b, int64_t(j) * V, w);
#pragma unroll
    for (int k = 0; k < V; ++k) u[k] *= x[k], w[k] *= x[k];
    store_vec(ya, int64_t(j) * V, u);
    store_vec(yb, int64_t(j) * V, w);
  }
}

template <class T>
__global__ void mul_pair_kernel(int64_t n, int64_t cols, int64_t ldg, const T* g, const T* a, const T* b, T* ya,
                                T* yb) {
  AVEY_GRID_STRIDE(i, n) {
    const int64_t r = i / cols;
    const float x = load(g, r * ldg + (i - r * cols));
    store(ya, i, x * load(a, i));
    store(yb, i, x * load(b, i));
  }
}

template <class T>
void mul_pair(int64_t rows, int64_t cols, const T* g, int64_t ldg, const T* a, const T* b, T* ya, T* yb) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  constexpr int V = kVec<T>;
  if (cols % V == 0 && ldg % V == 0 && rows * ldg / V <= int64_t(UINT32_MAX) / 2 && aligned16(g) && aligned16(a) &&
      aligned16(b) && aligned16(ya) && aligned16(yb))
    mul_pair_vec_kernel<<<blocks_for(n / V), kThreads, 0, stream()>>>(uint32_t(n / V), uint32_t(cols / V),
                                                                      uint32_t(ldg / V), g, a, b, ya, yb);
  else
    mul_pair_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, cols, ldg, g, a, b, ya, yb);
  AVEY_LAUNCH_CHECK("mul_pair");
}

// ---------------------------------------------------------------- reduce_to

template <class T> void reduce_to(Broadcast bc, int64_t rows, int64_t cols, const T* g, T* gb) {
  switch (bc) {
    case Broadcast::None: copy_on_device(gb, g, size_t(rows * cols) * sizeof(T)); break;
    case Broadcast::Row: column_sums(rows, cols, LoadAt<T>{g, cols}, gb); break;
    case Broadcast::Column: row_sums(rows, cols, g, gb); break;
    case Broadcast::Scalar: sum_all(rows * cols, g, gb); break;
  }
}

// ---------------------------------------------------------------- scale, add_scalar, axpy

template <class T> __global__ void affine_kernel(int64_t n, float s, float t, const T* x, T* y) {
  AVEY_GRID_STRIDE(i, n) store(y, i, s * load(x, i) + t);
}
template <class T> __global__ void axpy_kernel(int64_t n, float alpha, const T* x, T* y) {
  AVEY_GRID_STRIDE(i, n) store(y, i, load(y, i) + alpha * load(x, i));
}
// The same, one 16-byte vector a thread (n a multiple of kVec, pointers aligned).
template <class T> __global__ void axpy_vec_kernel(uint32_t nvec, float alpha, const T* x, T* y) {
  constexpr int V = kVec<T>;
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    float a[V], b[V];
    load_vec(y, int64_t(j) * V, a);
    load_vec(x, int64_t(j) * V, b);
#pragma unroll
    for (int k = 0; k < V; ++k) a[k] = a[k] + alpha * b[k];
    store_vec(y, int64_t(j) * V, a);
  }
}

template <class T> void scale(int64_t n, double s, const T* x, T* y) {
  if (n <= 0) return;
  affine_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, float(s), 0.f, x, y);
  AVEY_LAUNCH_CHECK("scale");
}
template <class T> void add_scalar(int64_t n, double s, const T* x, T* y) {
  if (n <= 0) return;
  affine_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, 1.f, float(s), x, y);
  AVEY_LAUNCH_CHECK("add_scalar");
}
template <class T> void axpy(int64_t n, double alpha, const T* x, T* y) {
  if (n <= 0) return;
  if (n % kVec<T> == 0 && n / kVec<T> <= int64_t(UINT32_MAX) / 2 && aligned16(x) && aligned16(y))
    axpy_vec_kernel<<<blocks_for(n / kVec<T>), kThreads, 0, stream()>>>(uint32_t(n / kVec<T>), float(alpha), x, y);
  else
    axpy_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, float(alpha), x, y);
  AVEY_LAUNCH_CHECK("axpy");
}

// ---------------------------------------------------------------- unary functions
// (the formulas are in kernels/elementwise_math.h, shared with the CPU kernels)

template <class T> __global__ void unary_kernel(Unary f, int64_t n, const T* x, T* y) {
  AVEY_GRID_STRIDE(i, n) store(y, i, unary_value(f, load(x, i)));
}
template <class T> __global__ void unary_backward_kernel(Unary f, int64_t n, const T* x, const T* gy, T* gx) {
  AVEY_GRID_STRIDE(i, n) store(gx, i, unary_derivative(f, load(x, i)) * load(gy, i));
}

template <class T> void unary(Unary f, int64_t n, const T* x, T* y) {
  if (n <= 0) return;
  unary_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(f, n, x, y);
  AVEY_LAUNCH_CHECK("unary");
}
template <class T> void unary_backward(Unary f, int64_t n, const T* x, const T* gy, T* gx) {
  if (n <= 0) return;
  unary_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(f, n, x, gy, gx);
  AVEY_LAUNCH_CHECK("unary_backward");
}

// ---------------------------------------------------------------- tril

template <class T>
__global__ void tril_kernel(int64_t n, int64_t rows, int64_t cols, int64_t diagonal, const T* x, T* y) {
  AVEY_GRID_STRIDE(i, n) {
    const int64_t c = i % cols, r = (i / cols) % rows;
    store(y, i, c <= r + diagonal ? load(x, i) : 0.f);
  }
}

template <class T> void tril(int64_t batch, int64_t rows, int64_t cols, int64_t diagonal, const T* x, T* y) {
  const int64_t n = batch * rows * cols;
  if (n <= 0) return;
  tril_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, rows, cols, diagonal, x, y);
  AVEY_LAUNCH_CHECK("tril");
}

AVEY_INSTANTIATE_CUDA(binary)
AVEY_INSTANTIATE_CUDA(mul_pair)
AVEY_INSTANTIATE_CUDA(reduce_to)
AVEY_INSTANTIATE_CUDA(scale)
AVEY_INSTANTIATE_CUDA(add_scalar)
AVEY_INSTANTIATE_CUDA(axpy)
AVEY_INSTANTIATE_CUDA(unary)
AVEY_INSTANTIATE_CUDA(unary_backward)
AVEY_INSTANTIATE_CUDA(tril)

}  // namespace kernels::cuda
