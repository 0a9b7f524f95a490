// The enricher: a linear expansion d -> m followed by an activation (docs/model.md).
//
//   P = Y U^T + b        (Y [rows, d]; U [m, d] stored like nn.Linear; b [m])
//   Z = act(P)           (relu2 by default)
//
// This is the layer composed from primitives (the reference the fused block is tested against);
// the fused block (avey/block.h) derives its backward:
//   dP = act'(P) (.) dZ,   dY = dP U,   dU = dP^T Y,   db = colsum dP
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

engine::Tensor enricher_composed(const engine::Tensor& y, const engine::Tensor& weight, const engine::Tensor& bias,
                                 Activation act);

}  // namespace avey
