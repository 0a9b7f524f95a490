// The block's and the head's normalisation (docs/model.md): RMSNorm, or LayerNorm (an ablation).
//
// RMSNorm, per row x (d columns), gain g [d]:
//   r = 1 / sqrt(mean(x^2) + eps),   y = x r (.) g
// Backward, with gy = dL/dy and u = g (.) gy (dr/dx = -r^3 x / d):
//   dL/dx = r u - x r^3 mean(x (.) u) = r (u - x^ mean(x^ (.) u)),  x^ = x r
//   dL/dg = colsum(gy (.) x^)
// engine::rmsnorm computes it with one kernel each way (engine/ops_norm.cpp); the fused block
// calls those kernels through engine/fused_ops.h. rms_norm_composed is the same function from
// primitives: the tests' reference.
#pragma once
#include "engine/ops.h"

namespace avey {

constexpr double kRmsEps = 1e-10;       // the model's RMSNorm eps
constexpr double kLayerNormEps = 1e-5;  // the LayerNorm ablation's (nn.LayerNorm's default)

// x [..., d], gain [d]: recorded op by op (square, row_means, add_scalar, rsqrt, mul).
engine::Tensor rms_norm_composed(const engine::Tensor& x, const engine::Tensor& gain, double eps);

}  // namespace avey
