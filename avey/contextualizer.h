// The contextualizer: mixes the C rows of each context (docs/model.md).
//
// Forward, per context (Z0, Z1 [C, h] with h = mt/2; V [C, C] learned, the layer's spatial_proj):
//   r   = 1 / sqrt(rowsum(Z0^2) + 1e-8)        (epsilon inside the root)
//   Zn  = Z0 (.) r                             (row-normalised)
//   Cos = Zn Zn^T                              [C, C]
//   W   = tril(V)                              (lower triangle incl. the diagonal)
//   A   = W (.) Cos       (dynamic; the "no dynamic parameterisation" ablation: A = W)
//   Y   = A Z0                                 [C, h]
//   c   = act(Y) (.) Z1                        (act: contextualizer_activation, none by default)
// All N contexts go through one batched product each ([N, C, C] and [N, C, h]).
//
// Backward, with dc = dL/dc:
//   dZ1 = dc (.) act(Y)
//   dY  = act'(Y) (.) (dc (.) Z1)
//   dA  = dY Z0^T                              [N, C, C]
//   dZ0 = A^T dY                               (the direct path)
//   dV  = tril(sum over contexts of dA (.) Cos)       (dynamic=false: tril(sum dA))
//   dCos = dA (.) W
//   dZn = (dCos + dCos^T) Zn                   (Cos is symmetric in Zn)
//   dZ0 += r (.) (dZn - Zn (.) rowsum(Zn (.) dZn))    (through the normalisation:
//          dr/dZ0 = -r^3 Z0, so dZ0 = r dZn - r^3 Z0 (Z0 . dZn))
// The fused block (avey/block.h, avey/contextualizer_ops.h) computes this forward and backward
// for all contexts at once; contextualizer_composed below is the same forward from primitives
// (autograd differentiates it): the tests' reference.
//
// The attention ablation (contextualizer = "attention") replaces A Z0 by causal softmax
// attention with Q = K = V = Z0 per head of `head_size` columns, scale 1/sqrt(head_size);
// it is composed from primitives (an ablation, not a hot path) and has no spatial_proj.
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

constexpr double kCosineEps = 1e-8;

// z0, z1 [N, C, h]; spatial [C, C]. Returns c [N, C, h].
engine::Tensor contextualizer_composed(const engine::Tensor& z0, const engine::Tensor& z1,
                                       const engine::Tensor& spatial, bool dynamic, Activation act);

// Causal multi-head softmax attention on z0 [N, C, h] (Q = K = V per head), gated: act(att) (.) z1.
engine::Tensor attention_contextualizer(const engine::Tensor& z0, const engine::Tensor& z1, int64_t head_size,
                                        Activation act);

}  // namespace avey
