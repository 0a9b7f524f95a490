// Pieces shared by the two block bodies, block.cpp (every row) and final_block.cpp (the current
// split's rows): not part of the model's interface.
#pragma once
#include "avey/config.h"
#include "engine/ops.h"
#include "kernels/cpu/kernels.h"

namespace avey::block_parts {

// The enricher activation as a kernel function (Relu stands in for None: has_act is then false).
kernels::Unary enricher_unary(Activation a);

// relu and relu2 (and no activation) have act' as a function of act's output, so the backward
// needs only the saved Z parts, not the pre-activation P (one Z-sized tensor a block).
bool keeps_preactivation(const Config& cfg);

// x [N, R, C] (.) w [R, C], the same w for every context n.
engine::Tensor mul_per_context(const engine::Tensor& x, const engine::Tensor& w);

// The block's last backward step, y = rmsnorm(h) with the residual h + F: dh = rmsnorm'(dy) + dres
// and the gain's gradient gg; on the GPU one pass, which also sums dres's columns into gbo (the
// fuser bias's gradient) when want_gbo.
struct NormGrads {
  engine::Tensor gh, gg, gbo;
};
NormGrads norm_backward_residual(const engine::Tensor& h, const engine::Tensor& gain, const engine::Tensor& rstd,
                                 const engine::Tensor& gy, const engine::Tensor& gres, bool want_gbo);

}  // namespace avey::block_parts
