// The enricher's element-wise end as two tensor ops, for the fused block (avey/block.cpp): the
// bias, the activation and the split into the contextualizer's and the fuser's parts in one
// pass, and its backward in one pass. Kernels: avey/kernels (BiasActSplit, ActGradConcat), on
// either device. Not recorded: the block records one node around them.
#pragma once
#include "avey/config.h"
#include "engine/fused_ops.h"

namespace avey {

// P [rows, m] (the product y U^T) gets the bias [m] and the activation, and its columns are
// split: Z0 = the first w0, Z1 = the next w1 (w1 may be 0), and the rest (m - w0 - w1 columns)
// written into the window `rest` of another matrix (the fuser's input [c | Zh]; undefined when
// nothing is left). With `normalise`, also Zn = Z0's rows / sqrt(|row|^2 + eps) and those roots
// (the cosine's normalisation, from Z0 as stored). keep_p: P keeps the pre-activation for the
// backward (needed unless act' is a function of act's output: see keeps_preactivation).
struct EnrichedParts {
  engine::Tensor z0, z1, zn, denom;
};
EnrichedParts enrich_split(engine::Tensor& p, const engine::Tensor& bias, Activation act, int64_t w0, int64_t w1,
                           const engine::Columns& rest, bool keep_p, bool normalise, double eps);

// relu, relu2 (and none) have act' as a function of act's output, so their backward needs only
// the parts, not P (one Z-sized tensor less kept a block).
bool keeps_preactivation(Activation act);

// The backward: dP [rows, m] = act'(P) (.) [dZ0 | dZ1 | dRest] (P undefined when act' comes
// from the parts: keeps_preactivation; dRest a window laid out like rest), and, when gbias is
// given, dP's column sums (the bias's gradient) in the same pass, written into *gbias ([m]; a
// view of a larger gradient may be passed), allocated there when it is undefined.
engine::Tensor enrich_split_backward(const engine::Tensor& p, const EnrichedParts& z, const engine::Columns& rest,
                                     Activation act, const engine::Tensor& g0, const engine::Tensor& g1,
                                     const engine::Columns& grest, engine::Tensor* gbias);

}  // namespace avey
