// RMSNorm, fused: one autograd node with a hand-derived backward.
//
// Forward, per row x (d columns), gain g [d]:
//   r = 1 / sqrt(mean(x^2) + eps),   x^ = x r,   y = x^ (.) g
// Backward, with gy = dL/dy:
//   dL/dg = sum over rows of gy (.) x^
//   let u = g (.) gy. y depends on x through x directly and through r:
//     dr/dx = -r^3 x / d
//   so dL/dx = r u + x (-r^3 / d) (x . u) = r (u - x^ mean(x^ (.) u))
// Only x and g are kept; r and x^ are recomputed in backward (one row reduction).
#pragma once
#include "engine/ops.h"

namespace avey {

constexpr double kRmsEps = 1e-10;  // the model's RMSNorm eps

// x [..., d], gain [d]; eps kRmsEps in the model.
engine::Tensor rms_norm(const engine::Tensor& x, const engine::Tensor& gain, double eps);

// The same computation recorded op by op (square, mean_cols, add_scalar, rsqrt, mul): the test reference.
engine::Tensor rms_norm_composed(const engine::Tensor& x, const engine::Tensor& gain, double eps);

}  // namespace avey
