// The enricher: a linear expansion d -> m followed by an activation, fused.
//
// Forward, Y [N, d] (rows of every context), U [m, d] (stored like nn.Linear), b [m]:
//   P = Y U^T + b        (pre-activation, [N, m])
//   Z = act(P)           (relu2 by default)
// Backward, with dZ = dL/dZ:
//   dP = act'(P) (.) dZ
//   dY = dP U            [N, d]
//   dU = dP^T Y          [m, d]
//   db = sum over rows of dP
// Saved: Y and U (inputs) and P when act is not the identity (act' needs it; recomputing P
// would cost the layer's largest product again).
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

engine::Tensor enricher(const engine::Tensor& y, const engine::Tensor& weight, const engine::Tensor& bias,
                        Activation act);
engine::Tensor enricher_composed(const engine::Tensor& y, const engine::Tensor& weight, const engine::Tensor& bias,
                                 Activation act);

}  // namespace avey
