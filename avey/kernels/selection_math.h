// Per-context formulas of the top-k context selection (kernels select_contexts and
// selection_score_grad), shared by the CPU kernels (avey/kernels/cpu/selection.cpp) and the CUDA
// kernels (avey/kernels/cuda/selection.cu): one definition, so both backends pick the same rows and
// compute the same weights bit for bit. The kernels differ only in how they walk the contexts
// (an OpenMP loop, one CUDA thread per context). All arithmetic is in double.
//
// A context is built for query q (a row index in its sequence) from its candidates, the rows
// j < q (and j < cols, the scores' row length, when ranked):
//   ranked:    the min(#candidates, k) candidates with the highest scores (equal scores: the
//              lower j wins), i.e. the first ones in the order (score descending, j ascending)
//   otherwise: the k rows right before q, j in [max(0, q - k), q)
// Its K = k + 1 slots: the k - selected empty slots first, then the selected rows by ascending
// j, then q itself.
#pragma once
#include <cstdint>

#include "kernels/elementwise_math.h"  // AVEY_HOST_DEVICE

namespace avey::kernels {

// How many rows context q selects: min(max(0, m), k), m = min(q, cols) when ranked, else q.
AVEY_HOST_DEVICE int64_t selected_rows(bool ranked, int64_t q, int64_t cols, int64_t k) {
  int64_t m = ranked && cols < q ? cols : q;
  if (m < 0) m = 0;
  return m < k ? m : k;
}

// The weights' denominator: the score of the first selected slot (the decoder's public code),
// the largest selected score (the decoder's paper) or the smallest (Avey-B).
enum class SplitNorm : uint8_t { First, Max, Min };

// How a context is chosen: by the scores (ranked) or the k rows right before it; the selected
// slots in ascending row order or (by_score) in descending score order (Avey-B); weighted by
// score(j) / (score(norm) + eps), or all 1.
struct SelectRule {
  bool ranked = true, weighted = true, by_score = false;
  SplitNorm norm = SplitNorm::Max;
  double eps = 0.0;
};

// One context's K = k + 1 slots (the pointers at its first slot). score(j): the query's score
// against candidate j as a double (read only when ranked). row0: the global row of the
// sequence's row 0 (b * table); srow: the flat index of score(0) in the scores.
//   split:  the global row b*table + j of each slot (0 for empty slots)
//   weight: w_j = score(j) / (score(jn) + eps) when weighted, jn the norm's row (rule.norm; on
//           equal scores the earliest slot's); w = 1 unweighted and for q's own slot; 0 for
//           empty slots
//   score_index, norm_index: srow + j and srow + jn for weighted slots, -1 elsewhere
// Selection in O(k * cols) without storage: pass t picks the best candidate after pass t-1's
// pick in the order (score descending, j ascending) (strictly greater score, or equal score and
// larger j); the last pick (cut, cut_j) is the selected set's worst, so j is selected iff
// score(j) > cut, or score(j) == cut and j <= cut_j. by_score writes the picks as they come.
// NaN scores select an unspecified set (as the sort did before) but never more than k rows, and
// every index stays in range.
template <class Score>
AVEY_HOST_DEVICE void select_context(int64_t q, int64_t cols, int64_t k, int64_t row0, int64_t srow, Score score,
                                     const SelectRule& rule, int32_t* split, double* weight, int32_t* score_index,
                                     int32_t* norm_index) {
  for (int64_t s = 0; s <= k; ++s) split[s] = 0, weight[s] = 0.0, score_index[s] = -1, norm_index[s] = -1;
  const bool ranked = rule.ranked;
  const int64_t r = selected_rows(ranked, q, cols, k);
  const int64_t first = k - r;  // the first selected slot: the empty ones come first
  int64_t end = first;          // one past the last selected slot written
  if (ranked) {
    const int64_t m = q < cols ? q : cols;
    double cut = 0.0;
    int64_t cut_j = -1;
    for (int64_t t = 0; t < r; ++t) {  // pass t: the (t+1)-th best candidate
      double best = 0.0;
      int64_t best_j = -1;
      for (int64_t j = 0; j < m; ++j) {
        const double v = score(j);
        if (t > 0 && !(v < cut || (v == cut && j > cut_j))) continue;  // picked already (at or before the cut)
        if (best_j < 0 || v > best) best = v, best_j = j;               // strictly greater: ties keep the lower j
      }
      if (best_j < 0) break;  // only with NaN scores
      cut = best, cut_j = best_j;
      if (rule.by_score) split[end++] = int32_t(row0 + best_j);  // descending score, ties by ascending j
    }
    for (int64_t j = 0; j < m && end < k && cut_j >= 0 && !rule.by_score; ++j) {  // the selected, by ascending j
      const double v = score(j);
      if (v > cut || (v == cut && j <= cut_j)) split[end++] = int32_t(row0 + j);
    }
  } else {
    for (int64_t j = q - r; j < q; ++j) split[end++] = int32_t(row0 + j);
  }
  if (rule.weighted && end > first) {
    // the norm: the first selected slot's score, or the largest or smallest (strictly: the
    // earliest slot on ties)
    int64_t jn = split[first] - row0;
    double sn = score(jn);
    if (rule.norm != SplitNorm::First)
      for (int64_t s = first + 1; s < end; ++s) {
        const double v = score(split[s] - row0);
        if (rule.norm == SplitNorm::Max ? v > sn : v < sn) sn = v, jn = split[s] - row0;
      }
    const double norm = sn + rule.eps;  // norm + eps
    for (int64_t s = first; s < end; ++s) {
      const int64_t j = split[s] - row0;
      weight[s] = score(j) / norm;  // w_j = score(j) / (score(jn) + eps)
      score_index[s] = int32_t(srow + j);
      norm_index[s] = int32_t(srow + jn);
    }
  } else {
    for (int64_t s = first; s < end; ++s) weight[s] = 1.0;
  }
  split[k] = int32_t(row0 + q), weight[k] = 1.0;  // the last slot: q itself
}

// d(loss)/d(score e) of one context from its slots' weight gradients gw (K slots; score(i): the
// score at flat index i as a double, e a flat index one of the slots' score_index names). Every
// weighted slot t (score_index[t] >= 0) has w_t = s_t / n_t, s_t = score(score_index[t]),
// n_t = score(norm_index[t]) + eps, so
//   dscore(score_index[t]) += gw_t / n_t
//   dscore(norm_index[t])  -= gw_t w_t / n_t
// summed over t in slot order, from 0, in double: the order the host loop used, so the same bits.
template <class Score>
AVEY_HOST_DEVICE double context_score_grad(int64_t K, const int32_t* score_index, const int32_t* norm_index,
                                           const double* gw, Score score, double eps, int32_t e) {
  double g = 0.0;
  for (int64_t t = 0; t < K; ++t) {
    if (score_index[t] < 0) continue;
    const double n = score(norm_index[t]) + eps, w = score(score_index[t]) / n;
    if (score_index[t] == e) g += gw[t] / n;
    if (norm_index[t] == e) g -= gw[t] * w / n;
  }
  return g;
}

}  // namespace avey::kernels
