// The fuser: projects [c | Zh] back to d columns, fused (without materialising the concatenation).
//
// Forward, c [N, h] (contextualised tail), Zh [N, mh] (bypassed head; absent when mh = 0),
// O [d, h + mh] (stored like nn.Linear), b [d]; O = [Oc | Oh] by columns:
//   F = [c | Zh] O^T + b = c Oc^T + Zh Oh^T + b
// Backward, with dF = dL/dF:
//   dc  = dF Oc,   dZh = dF Oh
//   dO  = [dF^T c | dF^T Zh]
//   db  = sum over rows of dF
// Saved: the inputs only.
#pragma once
#include "engine/ops.h"

namespace avey {

// zh may be undefined (no bypass, tail_proportion = 1).
engine::Tensor fuser(const engine::Tensor& c, const engine::Tensor& zh, const engine::Tensor& weight,
                     const engine::Tensor& bias);
engine::Tensor fuser_composed(const engine::Tensor& c, const engine::Tensor& zh, const engine::Tensor& weight,
                              const engine::Tensor& bias);

}  // namespace avey
