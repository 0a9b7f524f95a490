// The fuser: projects [c | Zh] back to d columns (docs/model.md).
//
//   F = [c | Zh] O^T + b     (c [rows, h] the contextualised tail, Zh [rows, mh] the bypassed head,
//                             absent when mh = 0; O [d, h + mh] stored like nn.Linear; b [d])
//
// This is the layer composed from primitives (the reference the fused block is tested against);
// the fused block (avey/block.h) keeps [c | Zh] as one matrix and derives the backward:
//   [dc | dZh] = dF O,   dO = dF^T [c | Zh],   db = colsum dF
#pragma once
#include "engine/ops.h"

namespace avey {

// zh may be undefined (no bypass, tail_proportion = 1).
engine::Tensor fuser_composed(const engine::Tensor& c, const engine::Tensor& zh, const engine::Tensor& weight,
                              const engine::Tensor& bias);

}  // namespace avey
