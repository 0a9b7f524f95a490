// Gradient norms over the flat gradient buffer: the global norm for clipping (as
// torch.nn.utils.clip_grad_norm_ with norm_type 2) and per-segment norms for the per-layer
// gradient study. Sums of squares accumulate in fp64 in a fixed order, so the same gradients
// give the same norm bit for bit, whatever the thread count.
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "optim/segment.h"

namespace optim {

// The global norm and clip coefficient, left where the gradients are: on the GPU nothing waits
// for them unless norm() or scale() is read. Pass the whole result to AdamW::step.
struct ClipResult {
  engine::Tensor stats;  // f64 [2] on the gradients' device: ||g||_2 (before clipping), the coefficient
  double norm() const;   // read on the host (waits for the GPU)
  double scale() const;  // likewise
};
// sqrt(sum g^2) over every element of grads (f32 on CPU or CUDA; f64 on the CPU).
double grad_norm(const engine::Tensor& grads);

// PyTorch's clip coefficient: min(1, max_norm / (norm + 1e-6)). max_norm <= 0 disables clipping
// (returns 1). Like PyTorch (error_if_nonfinite = false) a NaN norm gives a NaN scale and an
// infinite norm a scale of 0: the training loop should check std::isfinite(norm) and skip the
// step rather than apply it.
double clip_scale(double norm, double max_norm);

// Both of the above, computed on grads' device. Nothing is written to grads: the coefficient is
// applied inside the AdamW step.
ClipResult clip_grad_norm(const engine::Tensor& grads, double max_norm);

// ||g[segment]||_2 for each segment, in the order given (one pass over the buffer).
std::vector<double> segment_norms(const engine::Tensor& grads, const std::vector<Segment>& segments);

}  // namespace optim
