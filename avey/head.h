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
// The loss is the graph's last node, so its gradient is computed in the forward pass, chunk by
// chunk of rows, for gL = 1 (as fused linear cross-entropy kernels do): each chunk's logits live
// only while its loss and its contribution to dh [N, d] and dE [V, d] are computed. Backward
// then only scales dh and dE by gL. So no [N, V] tensor is ever kept, and the logits are
// computed once. (Without a gradient to record, only the loss is computed.) When h is bf16
// (mixed precision, on the GPU) the softmax is computed in fp32 by one kernel that reads the
// bf16 logits and writes their gradient over them (kernels/cuda/loss.cu), and dE is summed
// over the chunks in fp32 by the products themselves (beta = 1).
#pragma once
#include "engine/ops.h"

namespace avey {

// Rows per chunk are chosen so that a chunk of logits holds at most this many elements (16x that
// on the GPU's bf16 path), shared evenly between the chunks.
constexpr int64_t kHeadChunkElements = int64_t(1) << 24;

engine::Tensor tied_head_loss(const engine::Tensor& h, const engine::Tensor& embedding, const engine::Tensor& targets,
                              int64_t chunk_elements = kHeadChunkElements);
engine::Tensor tied_head_loss_composed(const engine::Tensor& h, const engine::Tensor& embedding,
                                       const engine::Tensor& targets);

}  // namespace avey
