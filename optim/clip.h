// Gradient norms over the flat gradient buffer: the global norm for clipping (as
// torch.nn.utils.clip_grad_norm_ with norm_type 2) and per-segment norms for the per-layer
// gradient study. Sums of squares accumulate in fp64 in a fixed order, so the same gradients
// give the same norm bit for bit, whatever the thread count.
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "optim/segment.h"

namespace optim {

struct ClipResult {
  double norm = 0;   // ||g||_2 over the whole buffer, before clipping
  double scale = 1;  // the coefficient to multiply g by: pass it to AdamW::step as grad_scale
};

// sqrt(sum g^2) over every element of grads (f32 on CPU or CUDA; f64 on the CPU).
double grad_norm(const engine::Tensor& grads);

// PyTorch's clip coefficient: min(1, max_norm / (norm + 1e-6)). max_norm <= 0 disables clipping
// (returns 1). Like PyTorch (error_if_nonfinite = false) a NaN norm gives a NaN scale and an
// infinite norm a scale of 0: the training loop should check std::isfinite(norm) and skip the
// step rather than apply it.
double clip_scale(double norm, double max_norm);

// Both of the above. Nothing is written to grads: the scale is applied inside the AdamW step.
ClipResult clip_grad_norm(const engine::Tensor& grads, double max_norm);

// ||g[segment]||_2 for each segment, in the order given (one pass over the buffer).
std::vector<double> segment_norms(const engine::Tensor& grads, const std::vector<Segment>& segments);

}  // namespace optim
