// Avey's own kernels: the ones no other model would use (the enricher's fused element-wise end,
// the ranker's selection and MaxSim backward, the contextualizer's weighted triangles). Like the
// engine's (kernels/kernels.h) they take raw row-major arrays; one declaration list
// (avey/kernels/kernel_list.h) serves both backends: kernels in avey::kernels::cpu (float and
// double) and avey::kernels::cuda (float and bf16), picked by engine/dispatch.h's
// AVEY_DISPATCH_IN(::avey::kernels, ...). The GPU's triangle products are in
// avey/kernels/cuda/tril_matmul.h. engine/ and kernels/ never see these.
#pragma once
#include <cstdint>

#include "avey/kernels/selection_math.h"
#include "kernels/kernels.h"

namespace avey::kernels {

using ::kernels::bf16;
using ::kernels::Unary;

// The enricher's element-wise end (fused): p (rows x cols, a matrix product's output) += bias
// (one per column). Then z = f(p) (identity when !has_act) is written split by columns into
// three matrices: z0 (rows x w0), z1 (rows x w1), z2 (rows x (cols - w0 - w1), rows ld2
// elements apart: z2 may be a column window of a wider matrix; may be null when its width is 0).
// With keep_p, p keeps the pre-activation for the backward; without, p may or may not be
// overwritten (the GPU skips the write: the backward then takes f' from z, see ActGradConcat).
// With zn (may be null), also z0's rows normalised for the contextualizer's cosine,
// zn = z0 / sqrt(rowsum(z0^2) + eps) (rows x w0), and denom [rows] their denominators: exactly
// l2norm_rows(NormEps::Inside, rows, w0, z0, eps, zn, denom) on z0 as stored (the GPU without
// reading z0 back).
template <class T>
struct BiasActSplit {
  int64_t rows = 0, cols = 0;
  T* p = nullptr;
  const T* bias = nullptr;
  bool has_act = true;
  Unary f = Unary::Relu2;
  int64_t w0 = 0, w1 = 0;
  T* z0 = nullptr;
  T* z1 = nullptr;
  T* z2 = nullptr;
  int64_t ld2 = 0;
  bool keep_p = false;
  T* zn = nullptr;
  T* denom = nullptr;
  double eps = 0.0;
};

// Its backward: gp = f'(p) * [g0 | g1 | g2] (rows x cols; g2's rows, like z2's, ld2 elements
// apart). p may be null when f' is a function of the output z = [z0 | z1 | z2] (laid out like
// the g parts): relu' = [z > 0], relu2' = 2 sqrt(z), and when !has_act. gbias (may be null): the
// column sums of gp, the enricher bias's gradient.
template <class T>
struct ActGradConcat {
  int64_t rows = 0, cols = 0;
  const T* p = nullptr;
  const T* z0 = nullptr;
  const T* z1 = nullptr;
  const T* z2 = nullptr;
  int64_t ld2 = 0;
  bool has_act = true;
  Unary f = Unary::Relu2;
  int64_t w0 = 0, w1 = 0;
  const T* g0 = nullptr;
  const T* g1 = nullptr;
  const T* g2 = nullptr;
  T* gp = nullptr;
  T* gbias = nullptr;
};

// The ranker's MaxSim backward. best[b, t, j] = max over u < S of (Q_b C_b^T)[t, j S + u], taken
// at u = argmax[b, t, j] (Q_b [rs, d], C_b [js, d], js = J S): its gradient touches one
// similarity per (t, j), so
//   dQ[b, t]         = sum over j (in order) of g[b, t, j] C_b[j S + argmax[b, t, j]]
//   dC[b, j S + u]   = sum over t with argmax[b, t, j] = u (in order of t) of g[b, t, j] Q_b[t]
// (written, not added to) instead of two dense products with a matrix that is zero but there.
template <class T>
struct MaxSimBackward {
  int64_t batch = 0, rs = 0, js = 0, S = 0, d = 0;
  const T* q = nullptr;
  const T* c = nullptr;
  const int32_t* argmax = nullptr;
  const T* g = nullptr;
  T* dq = nullptr;
  T* dc = nullptr;
};

// Top-k context selection (a ranker's plan; the formulas: avey/kernels/selection_math.h):
// batch x queries contexts, context c = b * queries + r built for row q = query[r] of sequence b
// (rows b * table .. b * table + table - 1 of a table of rows), with K = k + 1 slots each
// (outputs [batch * queries * K], slot s of context c at c * K + s). The selected rows: with
// `ranked`, the min(max(0, min(q, cols)), k) rows j < min(q, cols) with the highest
// scores[c * cols + j] (scores [batch, queries, cols]; equal scores: the lower j wins); without,
// j in [max(0, q - k), q) (scores unread, may be null). Slots: the k - selected empty ones first
// (split 0, weight 0), then the selected by ascending j (split b * table + j; by_score: by
// descending score), then q itself (split b * table + q, weight 1). weight in double: with
// `weighted`, w_j = s_j / (s_n + eps), s_n the norm's score (SplitNorm: the first selected
// slot's, the largest or the smallest), and score_index / norm_index the flat indices of s_j /
// s_n in scores; otherwise w = 1 and the indices -1. query: [queries] on the kernel's device, or
// null for query[r] = r. The rule and its formulas: avey/kernels/selection_math.h.
template <class T>
struct SelectContexts {
  int64_t batch = 0, queries = 0, cols = 0, k = 0, table = 0;
  const int32_t* query = nullptr;
  const T* scores = nullptr;
  SelectRule rule;
  int32_t* split = nullptr;
  double* weight = nullptr;
  int32_t* score_index = nullptr;
  int32_t* norm_index = nullptr;
};

// The scores' gradient [contexts, cols] from the weights' (gw [contexts * slots], double), the
// plan of select_contexts (weighted): context c's row zeroed, then for each slot t in order with
// score_index[t] >= 0, n_t = scores[norm_index[t]] + eps, w_t = scores[score_index[t]] / n_t:
//   gscores[score_index[t]] += gw_t / n_t,  gscores[norm_index[t]] -= gw_t w_t / n_t
// summed in double, rounded to T once.
template <class T>
struct SelectionScoreGrad {
  int64_t contexts = 0, slots = 0, cols = 0;
  const T* scores = nullptr;
  const int32_t* score_index = nullptr;
  const int32_t* norm_index = nullptr;
  const double* gw = nullptr;
  double eps = 0.0;
  T* gscores = nullptr;
};

namespace cpu {
#include "avey/kernels/kernel_list.h"
}  // namespace cpu

namespace cuda {
#include "avey/kernels/kernel_list.h"
}  // namespace cuda

}  // namespace avey::kernels
