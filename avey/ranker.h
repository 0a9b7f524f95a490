// The ranker: which earlier splits each split's extended context holds, and with what weight.
// It runs once per forward, on the raw (right-padded) embeddings X. Below, the decoder's rules;
// Avey-B's differ in three places (docs/model.md section 2): its eps (1e-12), the selected
// splits in descending score order, and the norm the smallest selected score.
//
//  1. MaxSim scores (composed from recorded primitives, so the gradient reaches X through the
//     arg-max row pairs; row_max sends it to the first arg-max like torch.max):
//        x^ = x / (||x|| + 1e-8)                          (epsilon outside the root)
//        score(i, j) = sum over rows t of split i of  max over rows u of split j of  x^_t . x^_u
//     One batched product per sequence: sims = X^ X^^T [B, T, T]; max over each S-column block;
//     sum over each S-row block.
//  2. Selection (not differentiated, on the scores' device: kernels select_contexts, one
//     thread per context on the GPU): for split i, the r = min(i, k) earlier splits with the
//     highest scores (ties: the lower j), ordered by ascending j. Without the ranker
//     (ablation): the k splits right before i.
//  3. Weights: w_j = score(i, j) / (norm + 1e-8), norm = the largest selected score ("max") or
//     the score of the earliest selected split ("first"); w = 1 without split weighting.
//  4. Contexts (fused): H_i = [0 ... 0; w_j1 X_j1; ...; w_jr X_jr; X_i]: K = k+1 slots of S rows,
//     the k - r empty slots first (zero rows), so C = K*S rows in all.
//
// The fused context builder, per slot s of every context (split index j_s, weight w_s):
//   forward:   H[s] = w_s X[j_s]              (one gather_rows over splits seen as rows of S*d,
//                                              then a per-row scale; empty slots have w = 0)
//   backward:  dX[j]  = sum over slots s with j_s = j of w_s dH[s]
//                     = (P^T dH) per sequence, P [K*R, n] holding w_s at (s, j_s): one batched
//                       product instead of a scatter
//              dw_s   = <dH[s], X[j_s]>        (X[j_s] re-gathered; nothing saved but X)
//              dscore(i, j_s) += dw_s / (norm + 1e-8)
//              dscore(i, norm) -= dw_s w_s / (norm + 1e-8)    ("max": the earliest arg-max)
// The weights (in double, rounded to the splits' dtype once), P and the score gradient are
// computed on the device of the scores and splits (kernels select_contexts, selection_matrix,
// selection_score_grad): nothing goes to the host, so a training step on the GPU never waits for
// the ranker.
#pragma once
#include <vector>

#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

constexpr double kRankerEps = 1e-8;  // the decoder's (Avey-B's is its config's eps)

// The ranker's epsilon for a config: in the rows' normalisation and the weights' denominator.
double ranker_eps(const Config& cfg);

// score[b, r, j] for the query splits of xq [B, R*S, d] against the candidate splits of
// xc [B, J*S, d] -> [B, R, J], rows normalised as x / (|x| + eps). Recorded (differentiable).
// Pass xc = xq for all pairs.
engine::Tensor maxsim_scores(const engine::Tensor& xq, const engine::Tensor& xc, int64_t split_size,
                             double eps = kRankerEps);

// The result of selection: every slot of every context. The slots live on the device of the
// scores (the selection runs there); what does not depend on the scores is on the host.
struct ContextPlan {
  int64_t batch = 0;         // B
  int64_t table_splits = 0;  // n: splits per sequence in the split table (rows b*n .. b*n+n-1)
  int64_t queries = 0;       // R: contexts per sequence
  int64_t slots = 0;         // K = k + 1
  int64_t score_cols = 0;    // J: candidates per query in the scores [B, R, J]
  double eps = kRankerEps;   // the weights' denominator: score(norm) + eps
  engine::Tensor split;        // i32 [B*R*K] global row of the split table (0 for empty slots)
  engine::Tensor weight;       // f64 [B*R*K] w (0 for empty slots, 1 for the current split);
                               // rounded to the splits' dtype where used (one rounding from double)
  engine::Tensor score_index;  // i32 [B*R*K] flat index into scores of w's numerator, -1: constant
  engine::Tensor norm_index;   // i32 [B*R*K] flat index of the norm's score, -1: constant (the
                               // backward reads norm + 1e-8 and w from the scores again, in double)
  // host: how many slots of each context are empty (they come first), [B*R]: k - min(q, J, k)
  // for query split q with the ranker, k - min(q, k) without (the scores do not matter)
  std::vector<int32_t> empty_slots;
  bool weighted = false;  // host: does any weight depend on the scores (ranker, split weighting, a selected slot)?
};

// Selection and weights on `device`. query_split[r]: the split index (within its sequence) that
// context r is built for; its candidates are the splits j < query_split[r] (and j < J).
// scores: [B, R, J] on `device`, read only by the ranker (undefined without it, or when B*R*J = 0).
// Nothing is copied to the host; query_split is uploaded unless it is 0..R-1.
ContextPlan select_contexts(const Config& cfg, int64_t batch, int64_t table_splits,
                            const std::vector<int64_t>& query_split, const engine::Tensor& scores, int64_t score_cols,
                            engine::Device device);
// The same from host scores (B*R*J doubles; empty without the ranker), planned on the CPU: tests.
ContextPlan plan_contexts(const Config& cfg, int64_t batch, int64_t table_splits,
                          const std::vector<int64_t>& query_split, const std::vector<double>& scores,
                          int64_t score_cols);

// Fused: splits [B*n, S*d], scores [B, R, J] (or undefined when the weights are constant)
// -> contexts [B*R*K, S*d] (= [B*R, C, d] row-major). The plan on the splits' device.
engine::Tensor build_contexts(const engine::Tensor& splits, const engine::Tensor& scores, const ContextPlan& plan);
// The same from recorded primitives (gather_rows, concat_rows, div, add, mul): the test reference
// (it reads the plan on the host).
engine::Tensor build_contexts_composed(const engine::Tensor& splits, const engine::Tensor& scores,
                                       const ContextPlan& plan);

}  // namespace avey
