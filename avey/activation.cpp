#include "avey/activation.h"

#include <stdexcept>

#include "engine/fused_ops.h"

namespace avey {

using engine::Tensor;

kernels::Unary unary_of(Activation a) {
  switch (a) {
    case Activation::Relu: return kernels::Unary::Relu;
    case Activation::Relu2: return kernels::Unary::Relu2;
    case Activation::Gelu: return kernels::Unary::Gelu;
    case Activation::Silu: return kernels::Unary::Silu;
    case Activation::None: break;
  }
  throw std::logic_error("unary_of(None)");
}

Tensor activate(Activation a, const Tensor& x) {
  if (a == Activation::None) return x;
  return engine::unary(unary_of(a), x);
}

Tensor activation_grad(Activation a, const Tensor& x, const Tensor& gy) {
  if (a == Activation::None) return gy;
  return engine::unary_backward(unary_of(a), x, gy);
}

}  // namespace avey
