// The tied output head with a fused cross-entropy: the loss from the final hidden rows, the
// embedding matrix and the targets, without keeping the [N, V] logits alive for backward.
//
// Forward, h [N, d] (after the final norm), E [V, d] (wte.weight, tied), targets t [N]
// (-100 = ignored), M = number of counted rows:
//   logits = h E^T                                  (computed chunk by chunk of rows)
//   lse_r  = log sum_v exp(logits[r, v])            (saved: one value per row)
//   L      = (1/M) sum over counted rows r of (lse_r - logits[r, t_r])
// Backward, with gL = dL/dL (a scalar):
//   dlogits[r] = gL/M (softmax(logits[r]) - onehot(t_r))   (zero for ignored rows)
//   dh = dlogits E,   dE = dlogits^T h
// The logits of each chunk are recomputed in backward (one extra N x d x V product) from the
// saved lse, so at most one chunk of logits [rows, V] exists at a time. Logits and the
// softmax are computed in fp32 when h is bf16.
#pragma once
#include "engine/ops.h"

namespace avey {

// Rows per chunk are chosen so that a chunk of logits holds at most this many elements.
constexpr int64_t kHeadChunkElements = int64_t(1) << 24;

engine::Tensor tied_head_loss(const engine::Tensor& h, const engine::Tensor& embedding, const engine::Tensor& targets,
                              int64_t chunk_elements = kHeadChunkElements);
engine::Tensor tied_head_loss_composed(const engine::Tensor& h, const engine::Tensor& embedding,
                                       const engine::Tensor& targets);

}  // namespace avey
