// Top-k context selection (a ranker's plan: which earlier rows each context holds, with what
// weight), the matrix that scatters the contexts' gradient back to the rows, and the scores'
// gradient from the weights'. The per-context formulas are in avey/kernels/selection_math.h, shared
// with the CUDA kernels; here one OpenMP iteration per context (or per matrix row). Also the
// MaxSim scores' sparse backward (maxsim_backward), which feeds the ranker's gradient to its rows.
#include <algorithm>

#include "avey/kernels/kernels.h"
#include "avey/kernels/selection_math.h"
#include "kernels/instantiate.h"

namespace avey::kernels::cpu {

template <class T> void select_contexts(const SelectContexts<T>& a) {
  const auto& [batch, queries, cols, k, table, query, scores, rule, split, weight, score_index, norm_index] = a;
  const bool ranked = rule.ranked;
  const int64_t K = k + 1, contexts = batch * queries;
#pragma omp parallel for schedule(static) if (contexts * (ranked ? cols * (k + 1) : K) > 65536)
  for (int64_t c = 0; c < contexts; ++c) {
    const int64_t b = c / queries, r = c % queries, srow = c * cols;  // context c's first score
    auto score = [&](int64_t j) { return double(scores[srow + j]); };
    const int64_t q = query ? int64_t(query[r]) : r;
    select_context(q, cols, k, b * table, srow, score, rule, split + c * K, weight + c * K,
                   score_index + c * K, norm_index + c * K);
  }
}

// P[b, s, j] = w_s where j = split_s - b * table (the slot's row in its sequence) and w_s != 0;
// 0 elsewhere. One row of P per slot.
template <class T>
void selection_matrix(int64_t batch, int64_t slots, int64_t table, const int32_t* split, const double* weight, T* P) {
  const int64_t rows = batch * slots;
#pragma omp parallel for schedule(static) if (rows * table > 65536)
  for (int64_t i = 0; i < rows; ++i) {
    T* p = P + i * table;
    std::fill(p, p + table, T(0));
    if (weight[i] != 0.0) p[split[i] - (i / slots) * table] = T(weight[i]);  // one rounding of w to T
  }
}

// Per context c (scores row c): the row zeroed, then each weighted slot's score written once with
// its gradient summed in double (context_score_grad), rounded to T once.
template <class T> void selection_score_grad(const SelectionScoreGrad<T>& a) {
  const auto& [contexts, slots, cols, scores, score_index, norm_index, gw, eps, gscores] = a;
  auto score = [scores](int64_t i) { return double(scores[i]); };
#pragma omp parallel for schedule(static) if (contexts * slots * slots > 65536)
  for (int64_t c = 0; c < contexts; ++c) {
    std::fill(gscores + c * cols, gscores + (c + 1) * cols, T(0));
    const int32_t *si = score_index + c * slots, *ni = norm_index + c * slots;
    for (int64_t s = 0; s < slots; ++s)
      if (si[s] >= 0) gscores[si[s]] = T(context_score_grad(slots, si, ni, gw + c * slots, score, eps, si[s]));
  }
}

template <class T> void maxsim_backward(const MaxSimBackward<T>& a) {
  const auto& [batch, rs, js, S, d, Q, C, argmax, g, dQ, dC] = a;
  const int64_t J = js / S;
#pragma omp parallel for schedule(static) if (batch * rs * d > 65536)
  for (int64_t bt = 0; bt < batch * rs; ++bt) {  // dQ: row (b, t) gathers J rows of C
    const int64_t b = bt / rs;
    T* out = dQ + bt * d;
    std::fill(out, out + d, T(0));
    for (int64_t j = 0; j < J; ++j) {
      const T gj = g[bt * J + j];
      const T* c = C + (b * js + j * S + argmax[bt * J + j]) * d;
      for (int64_t e = 0; e < d; ++e) out[e] += gj * c[e];
    }
  }
#pragma omp parallel for schedule(static) if (batch * js * d > 65536)
  for (int64_t bc = 0; bc < batch * js; ++bc) {  // dC: row (b, j S + u) from the rows t that chose it
    const int64_t b = bc / js, j = (bc % js) / S, u = bc % S;
    T* out = dC + bc * d;
    std::fill(out, out + d, T(0));
    for (int64_t t = 0; t < rs; ++t) {
      const int64_t at = (b * rs + t) * J + j;
      if (argmax[at] != u) continue;
      const T* q = Q + (b * rs + t) * d;
      for (int64_t e = 0; e < d; ++e) out[e] += g[at] * q[e];
    }
  }
}

template <class T>
void gathered_row_dots(int64_t n, int64_t cols, const T* g, const T* table, const int32_t* idx, double* out) {
#pragma omp parallel for schedule(static) if (n * cols > 65536)
  for (int64_t s = 0; s < n; ++s) {
    const T* a = g + s * cols;
    const T* b = table + int64_t(idx[s]) * cols;
    T dot = T(0);
    for (int64_t c = 0; c < cols; ++c) dot += a[c] * b[c];
    out[s] = double(dot);
  }
}

AVEY_INSTANTIATE_CPU(gathered_row_dots)
AVEY_INSTANTIATE_CPU(maxsim_backward)
AVEY_INSTANTIATE_CPU(select_contexts)
AVEY_INSTANTIATE_CPU(selection_matrix)
AVEY_INSTANTIATE_CPU(selection_score_grad)

}  // namespace avey::kernels::cpu
