#include "avey/activation.h"

#include "engine/dispatch.h"

namespace avey {

using engine::Tensor;

static kernels::Unary unary_of(Activation a) {
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
  engine::check_same_shape("activation_grad", x, gy);
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::Unary f = unary_of(a);
  AVEY_DISPATCH("activation_grad", x, unary_backward, f, x.numel(), x.data<T>(), gy.data<T>(), gx.data<T>());
  return gx;
}

Tensor as_matrix(const Tensor& x) {
  int64_t cols = x.size(-1);
  return engine::reshape(x, {x.numel() / cols, cols});
}

Tensor sum_rows(const Tensor& x) {
  Tensor m = as_matrix(x);
  Tensor ones = Tensor::full({1, m.size(0)}, 1.0, x.dtype(), x.device());
  return engine::reshape(engine::matmul(ones, m), {m.size(1)});
}

}  // namespace avey
