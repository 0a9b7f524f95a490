// The contextualizer's weighted triangles on the GPU (avey/kernels/kernel_list.h): the
// spatial weights' gradient (tril_product_column_sums) and the cosine's symmetric gradient
// (sym_weighted), each reading only the lower triangles of its [C, C] operands.
#include "avey/kernels/kernels.h"
#include "kernels/cuda/columns.cuh"
#include "kernels/instantiate.h"

namespace avey::kernels::cuda {

using namespace ::kernels;
using namespace ::kernels::cuda;

// ---------------------------------------------------------------- tril_product_column_sums
// out[i, j] = sum over n of a[n, i, j] b[n, i, j] for j <= i, 0 above the diagonal: the spatial
// weights' gradient tril(sum_n dA (.) cos), reading only the lower triangles. Block (i, k) takes
// row i of the C x C matrix for the batch entries of chunk k (kTrilChunk of them): thread x
// adds, in n order, the products of its vector of columns 8x.. (one 16-byte load of each
// operand an entry when C is a multiple of 8, else elementwise), masked at the diagonal; the
// vectors wholly above it only write zeros. finish_columns adds the chunks' partial rows in a
// fixed order: deterministic. (A thread per element with the row and column recovered by a
// 64-bit division per entry ran at ~1.6 TB/s.)
constexpr int64_t kTrilChunk = 32;
template <class T>
__global__ void tril_product_partials(int64_t batch, int64_t C, const T* a, const T* b, float* partial) {
  constexpr int V = kVec<T>;
  const int64_t i = blockIdx.x, n0 = int64_t(blockIdx.y) * kTrilChunk, n1 = min(batch, n0 + kTrilChunk);
  float* out = partial + int64_t(blockIdx.y) * C * C + i * C;
  const bool vec = C % V == 0;
  for (int64_t j0 = int64_t(threadIdx.x) * V; j0 < C; j0 += int64_t(blockDim.x) * V) {
    float s[V] = {};
    if (j0 <= i) {
#pragma unroll 4
      for (int64_t n = n0; n < n1; ++n) {
        const int64_t at = (n * C + i) * C + j0;
        float x[V], y[V];
        if (vec) {
          load_vec(a, at, x);
          load_vec(b, at, y);
        } else {
#pragma unroll
          for (int e = 0; e < V; ++e) x[e] = j0 + e < C ? load(a, at + e) : 0.f, y[e] = j0 + e < C ? load(b, at + e) : 0.f;
        }
#pragma unroll
        for (int e = 0; e < V; ++e) s[e] += j0 + e <= i ? x[e] * y[e] : 0.f;
      }
    }
#pragma unroll
    for (int e = 0; e < V; ++e)
      if (j0 + e < C) out[j0 + e] = s[e];
  }
}

template <class T> void tril_product_column_sums(int64_t batch, int64_t C, const T* a, const T* b, T* out) {
  if (C == 0) return;
  const int64_t chunks = batch > 0 ? (batch + kTrilChunk - 1) / kTrilChunk : 1;
  if (C > INT32_MAX || chunks > 65535) fail("tril_product_column_sums", "too large", __FILE__, __LINE__);
  Scratch partial(size_t(chunks * C * C) * sizeof(float));
  const int threads = int(std::min<int64_t>(256, std::max<int64_t>(32, (C / kVec<T> + 31) / 32 * 32)));
  tril_product_partials<<<dim3(unsigned(C), unsigned(chunks)), threads, 0, stream()>>>(batch, C, a, b,
                                                                                      partial.as<float>());
  AVEY_LAUNCH_CHECK("tril_product_column_sums");
  finish_columns(chunks, C * C, partial.as<float>(), out);
}

// ---------------------------------------------------------------- sym_weighted
// S = X + X^T for each [C, C] matrix G of the batch, X = G (.) W with W one lower-triangular
// [C, C] matrix: the cosine matrix's gradient made symmetric, so that dZn = dCos Zn + dCos^T Zn
// is one product S Zn. X is zero above the diagonal, so only G's (and W's) lower triangle is read
// (what is above may hold anything: the product that makes G may skip those tiles). One block of
// 256 threads per pair of mirrored 64 x 64 tiles (ti >= tj, numbered along the lower triangle by
// blockIdx.x) of one matrix (blockIdx.y, strided). Thread t takes A columns (one 16-byte vector
// when C is whole vectors and the pointers are aligned, else one element: A = 1) of rows
// t / (64 / A), + 256 / (64 / A), ...: it reads the tile (ti, tj) of G and W once, coalesced,
// keeps X in registers for S's tile (ti, tj) and leaves it in shared memory (fp32, rows padded
// against bank conflicts) for S's tile (tj, ti) = X^T, which it writes in the same layout. On the
// diagonal the two are one tile, X + X^T, added in fp32 and rounded once.
constexpr int kSymTile = 64, kSymThreads = 256;

// X's A elements at row r from column c: G (.) W on and below the diagonal, 0 above it or past C
// (r C + c < 2^31). Nothing above the diagonal is read: a vector that crosses it reads its lower
// elements one at a time.
template <int A, class T>
__device__ __forceinline__ void weighted_lower(const T* g, const T* w, int C, int r, int c, float (&x)[A]) {
  if (r < C && c + A - 1 <= r) {
    float m[A];
    load_n<A>(g, r * C + c, x);
    load_n<A>(w, r * C + c, m);
#pragma unroll
    for (int e = 0; e < A; ++e) x[e] *= m[e];
  } else {
#pragma unroll
    for (int e = 0; e < A; ++e) x[e] = r < C && c + e <= r ? load(g, r * C + c + e) * load(w, r * C + c + e) : 0.f;
  }
}

// Register caps, no spills: five blocks a multiprocessor for the vector path (four, at its
// natural 54-60 registers, ran ~4% slower), four for the one-element path (it would spill at
// five; uncapped it took ~160 registers, one block).
template <int A, class T>
__global__ void __launch_bounds__(kSymThreads, A == 1 ? 4 : 5)
    sym_weighted_kernel(int64_t batch, int C, const T* G, const T* W, T* S) {
  constexpr int TX = kSymTile / A, TY = kSymThreads / TX, K = kSymTile / TY;  // K rows a thread
  __shared__ float tile[kSymTile][kSymTile + 1];
  const int p = int(blockIdx.x);
  int ti = int((sqrt(8.0 * double(p) + 1.0) - 1.0) / 2.0);
  while (ti * (ti + 1) / 2 > p) --ti;
  while ((ti + 1) * (ti + 2) / 2 <= p) ++ti;
  const int tj = p - ti * (ti + 1) / 2, r0 = ti * kSymTile, c0 = tj * kSymTile;
  const int cl = int(threadIdx.x % TX) * A, ty = int(threadIdx.x / TX);
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
    const T* g = G + b * C * C;
    T* s = S + b * C * C;
    float x[K][A];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = ty + k * TY;
      weighted_lower<A>(g, W, C, r0 + i, c0 + cl, x[k]);
#pragma unroll
      for (int e = 0; e < A; ++e) tile[i][cl + e] = x[k][e];
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = ty + k * TY;
      float t[A];  // X^T's elements (c0 + i, r0 + cl + e)
#pragma unroll
      for (int e = 0; e < A; ++e) t[e] = tile[cl + e][i];
      const int r = r0 + i, c = c0 + cl;
      if (ti == tj) {  // X + X^T within the diagonal tile
#pragma unroll
        for (int e = 0; e < A; ++e) x[k][e] += t[e];
        if (r < C && c < C) store_n<A>(s, r * C + c, x[k]);
      } else {
        if (r < C && c < C) store_n<A>(s, r * C + c, x[k]);  // X itself, below the diagonal
        const int rt = c0 + i, ct = r0 + cl;                  // X^T, above it
        if (rt < C && ct < C) store_n<A>(s, rt * C + ct, t);
      }
    }
    __syncthreads();
  }
}

template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S) {
  if (batch == 0 || C == 0) return;
  if (C > 46340) fail("sym_weighted", "matrix too large (C C >= 2^31)", __FILE__, __LINE__);
  const int64_t t = (C + kSymTile - 1) / kSymTile, pairs = t * (t + 1) / 2;
  const dim3 grid(unsigned(pairs), unsigned(batch < 65535 ? batch : 65535));
  constexpr int V = kVec<T>;
  if (C % V == 0 && aligned16(G) && aligned16(W) && aligned16(S))
    sym_weighted_kernel<V><<<grid, kSymThreads, 0, stream()>>>(batch, int(C), G, W, S);
  else
    sym_weighted_kernel<1><<<grid, kSymThreads, 0, stream()>>>(batch, int(C), G, W, S);
  AVEY_LAUNCH_CHECK("sym_weighted");
}

AVEY_INSTANTIATE_CUDA(sym_weighted)
AVEY_INSTANTIATE_CUDA(tril_product_column_sums)

}  // namespace avey::kernels::cuda
