// Activations by name, and their derivatives.
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

// The activation as a kernel function (Activation::None has none: throws).
kernels::Unary unary_of(Activation a);

// act(x) as a recorded engine op (Activation::None returns x itself).
engine::Tensor activate(Activation a, const engine::Tensor& x);

// act'(x) (.) gy, element-wise, never recorded: the backward of an activation at its input x.
// None: gy. The engine's unary_backward (the kernels the activation ops' own backward passes
// use), so the derivative is exact (erf GELU included).
engine::Tensor activation_grad(Activation a, const engine::Tensor& x, const engine::Tensor& gy);

}  // namespace avey
