// Activations by name, their derivatives, and small helpers the fused layers share.
#pragma once
#include "avey/config.h"
#include "engine/ops.h"

namespace avey {

// act(x) as a recorded engine op (Activation::None returns x itself).
engine::Tensor activate(Activation a, const engine::Tensor& x);

// act'(x) (.) gy, element-wise, never recorded: the backward of an activation at its input x.
// None: gy. Uses the engine's unary_backward kernels (the same ones the activation ops' own
// backward passes use), so the derivative is exact (erf GELU included).
engine::Tensor activation_grad(Activation a, const engine::Tensor& x, const engine::Tensor& gy);

// Column sums of a matrix [rows, cols] (any leading dims flattened into rows) -> [cols]: the
// gradient of a row-broadcast operand (a bias, a gain). One product with a row of ones.
engine::Tensor sum_rows(const engine::Tensor& x);

// Collapses leading dims: [..., n] -> [rows, n].
engine::Tensor as_matrix(const engine::Tensor& x);

}  // namespace avey
