// Top-k context selection (a ranker's plan), its scatter matrix P and the scores' gradient:
// select_contexts, selection_matrix, selection_score_grad (avey/kernels/kernels.h says what each
// computes). The per-context formulas are avey/kernels/selection_math.h, the same code the CPU
// kernels run, in double: the same rows, weights and gradients bit for bit.
//
// select_contexts, selection_score_grad: one thread per context. A context's work is small
// (k passes over its cols scores, k <= ~16, cols <= ~1024) and there are batch * queries of
// them; each thread owns its context's slots and its row of the scores' gradient (zeroed, then
// each weighted slot's entry written once), so no atomics and a fixed order of the sums.
// selection_matrix: one thread per element of P (zero, or the slot's weight at its row).
// maxsim_backward: the MaxSim scores' sparse backward (below).
#include "avey/kernels/kernels.h"
#include "avey/kernels/selection_math.h"
#include "kernels/cuda/common.cuh"
#include "kernels/instantiate.h"

namespace avey::kernels::cuda {

using namespace ::kernels::cuda;

template <class T>
__global__ void select_contexts_kernel(int64_t contexts, int64_t queries, int64_t cols, int64_t k, int64_t table,
                                       const int32_t* query, const T* scores, SelectRule rule, int32_t* split,
                                       double* weight, int32_t* score_index, int32_t* norm_index) {
  const int64_t K = k + 1;
  AVEY_GRID_STRIDE(c, contexts) {
    const int64_t b = c / queries, r = c % queries, srow = c * cols;  // context c's first score
    auto score = [=](int64_t j) { return double(load(scores, srow + j)); };
    const int64_t q = query ? int64_t(query[r]) : r;
    select_context(q, cols, k, b * table, srow, score, rule, split + c * K, weight + c * K,
                   score_index + c * K, norm_index + c * K);
  }
}

template <class T> void select_contexts(const SelectContexts<T>& args) {
  const auto& [batch, queries, cols, k, table, query, scores, rule, split, weight, score_index, norm_index] = args;
  const int64_t contexts = batch * queries;
  if (contexts <= 0) return;
  // small blocks: few contexts, each a long serial loop, spread over as many SMs as possible
  select_contexts_kernel<<<blocks_for(contexts, 64), 64, 0, stream()>>>(contexts, queries, cols, k, table, query,
                                                                        scores, rule, split, weight, score_index,
                                                                        norm_index);
  AVEY_LAUNCH_CHECK("select_contexts");
}

// P[b, s, j] = w_s if j = split_s - b * table and w_s != 0, else 0 (w_s rounded to T once: to
// float, then to bf16, as the engine's conversion from double does).
template <class T>
__global__ void selection_matrix_kernel(int64_t batch, int64_t slots, int64_t table, const int32_t* split,
                                        const double* weight, T* P) {
  AVEY_GRID_STRIDE(i, batch * slots * table) {
    const int64_t row = i / table, j = i % table;
    const double w = weight[row];
    const bool here = w != 0.0 && int64_t(split[row]) - (row / slots) * table == j;
    store(P, i, here ? float(w) : 0.f);
  }
}

template <class T>
void selection_matrix(int64_t batch, int64_t slots, int64_t table, const int32_t* split, const double* weight, T* P) {
  const int64_t n = batch * slots * table;
  if (n <= 0) return;
  selection_matrix_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(batch, slots, table, split, weight, P);
  AVEY_LAUNCH_CHECK("selection_matrix");
}

// Context c: its row of gscores zeroed, then every weighted slot's score entry written once
// with the gradient summed over the context's slots in order (double), rounded to T once.
template <class T>
__global__ void selection_score_grad_kernel(int64_t contexts, int64_t slots, int64_t cols, const T* scores,
                                            const int32_t* score_index, const int32_t* norm_index, const double* gw,
                                            double eps, T* gscores) {
  AVEY_GRID_STRIDE(c, contexts) {
    for (int64_t j = 0; j < cols; ++j) store(gscores, c * cols + j, 0.f);
    const int32_t *si = score_index + c * slots, *ni = norm_index + c * slots;
    auto score = [=](int64_t i) { return double(load(scores, i)); };
    for (int64_t s = 0; s < slots; ++s)
      if (si[s] >= 0)
        store(gscores, si[s], float(context_score_grad(slots, si, ni, gw + c * slots, score, eps, si[s])));
  }
}

template <class T> void selection_score_grad(const SelectionScoreGrad<T>& args) {
  const auto& [contexts, slots, cols, scores, score_index, norm_index, gw, eps, gscores] = args;
  if (contexts <= 0) return;
  selection_score_grad_kernel<<<blocks_for(contexts, 64), 64, 0, stream()>>>(contexts, slots, cols, scores,
                                                                             score_index, norm_index, gw, eps, gscores);
  AVEY_LAUNCH_CHECK("selection_score_grad");
}

// gathered_row_dots: a block per row s, each thread a strided share of 16-byte vectors (or
// elements, where the rows are not whole vectors), then the block's fixed tree.
template <class T>
__global__ void gathered_row_dots_kernel(int64_t cols, bool vec, const T* g, const T* table, const int32_t* idx,
                                         double* out) {
  __shared__ float shared[32];
  constexpr int V = kVec<T>;
  const int64_t s = blockIdx.x;
  const int64_t a = s * cols, b = int64_t(idx[s]) * cols;
  float dot = 0.f;
  if (vec) {
    for (int64_t c = int64_t(threadIdx.x) * V; c < cols; c += int64_t(blockDim.x) * V) {
      float x[V], y[V];
      load_vec(g, a + c, x);
      load_vec(table, b + c, y);
#pragma unroll
      for (int e = 0; e < V; ++e) dot += x[e] * y[e];
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += load(g, a + c) * load(table, b + c);
  }
  dot = block_reduce(dot, Sum{}, shared);
  if (threadIdx.x == 0) out[s] = double(dot);
}

template <class T>
void gathered_row_dots(int64_t n, int64_t cols, const T* g, const T* table, const int32_t* idx, double* out) {
  if (n <= 0) return;
  if (n > INT32_MAX) fail("gathered_row_dots", "too many rows", __FILE__, __LINE__);
  const bool vec = cols % kVec<T> == 0 && aligned16(g) && aligned16(table);
  gathered_row_dots_kernel<<<unsigned(n), threads_for_row(vec ? cols / kVec<T> * 4 : cols), 0, stream()>>>(
      cols, vec, g, table, idx, out);
  AVEY_LAUNCH_CHECK("gathered_row_dots");
}

// maxsim_backward: a warp per output row, its lanes across 256 columns at a time (8 a lane, in
// registers); dQ's warp adds its J rows of C in j order. dC's warp (row j S + u of batch entry b)
// reads the arg-maxes of 32 rows t at a time and adds the rows that chose u in t order (a ballot
// of the matches): the same order as the CPU, no atomics.
constexpr int kMaxsimCols = 8;  // columns a lane holds: 256 a warp
// This lane's columns e0 + lane + 32 k of a row: s += w row, and row = s.
template <class T>
__device__ __forceinline__ void add_scaled(float (&s)[kMaxsimCols], float w, const T* row, int64_t e0, int64_t d) {
  const int64_t lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < kMaxsimCols; ++k)
    if (e0 + lane + 32 * k < d) s[k] += w * load(row, e0 + lane + 32 * k);
}
template <class T> __device__ __forceinline__ void store_cols(const float (&s)[kMaxsimCols], T* row, int64_t e0, int64_t d) {
  const int64_t lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < kMaxsimCols; ++k)
    if (e0 + lane + 32 * k < d) store(row, e0 + lane + 32 * k, s[k]);
}
template <class T>
__global__ void maxsim_dq_kernel(int64_t rows, int64_t rs, int64_t js, int64_t S, int64_t d, const T* C,
                                 const int32_t* argmax, const T* g, T* dQ) {
  const int64_t J = js / S;
  for (int64_t bt = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; bt < rows;
       bt += int64_t(gridDim.x) * blockDim.x / 32) {
    const int64_t b = bt / rs;
    for (int64_t e0 = 0; e0 < d; e0 += 32 * kMaxsimCols) {
      float s[kMaxsimCols] = {};
      for (int64_t j = 0; j < J; ++j)
        add_scaled(s, load(g, bt * J + j), C + (b * js + j * S + argmax[bt * J + j]) * d, e0, d);
      store_cols(s, dQ + bt * d, e0, d);
    }
  }
}

template <class T>
__global__ void maxsim_dc_kernel(int64_t rows, int64_t rs, int64_t js, int64_t S, int64_t d, const T* Q,
                                 const int32_t* argmax, const T* g, T* dC) {
  const int64_t J = js / S, lane = threadIdx.x & 31;
  for (int64_t bc = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; bc < rows;
       bc += int64_t(gridDim.x) * blockDim.x / 32) {
    const int64_t b = bc / js, j = (bc % js) / S;
    const int32_t u = int32_t(bc % S);
    for (int64_t e0 = 0; e0 < d; e0 += 32 * kMaxsimCols) {
      float s[kMaxsimCols] = {};
      for (int64_t t0 = 0; t0 < rs; t0 += 32) {
        const int64_t t = t0 + lane;
        unsigned hits = __ballot_sync(0xffffffffu, t < rs && argmax[(b * rs + t) * J + j] == u);
        while (hits) {
          const int64_t tt = t0 + __ffs(hits) - 1;
          hits &= hits - 1;
          add_scaled(s, load(g, (b * rs + tt) * J + j), Q + (b * rs + tt) * d, e0, d);
        }
      }
      store_cols(s, dC + bc * d, e0, d);
    }
  }
}

template <class T> void maxsim_backward(const MaxSimBackward<T>& args) {
  const auto& [batch, rs, js, S, d, Q, C, argmax, g, dQ, dC] = args;
  if (batch <= 0 || d <= 0) return;
  if (rs > 0) {
    maxsim_dq_kernel<<<blocks_for(batch * rs * 32), kThreads, 0, stream()>>>(batch * rs, rs, js, S, d, C, argmax, g, dQ);
    AVEY_LAUNCH_CHECK("maxsim_backward");
  }
  if (js > 0) {
    maxsim_dc_kernel<<<blocks_for(batch * js * 32), kThreads, 0, stream()>>>(batch * js, rs, js, S, d, Q, argmax, g, dC);
    AVEY_LAUNCH_CHECK("maxsim_backward");
  }
}

AVEY_INSTANTIATE_CUDA(gathered_row_dots)
AVEY_INSTANTIATE_CUDA(maxsim_backward)
AVEY_INSTANTIATE_CUDA(select_contexts)
AVEY_INSTANTIATE_CUDA(selection_matrix)
AVEY_INSTANTIATE_CUDA(selection_score_grad)

}  // namespace avey::kernels::cuda
