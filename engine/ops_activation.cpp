// Element-wise functions (relu, relu2, gelu, silu, tanh, sqrt, rsqrt, exp, log, square) and
// the lower-triangular mask.
//
// y = f(x) element by element, so dL/dx = f'(x) * dL/dy; the derivatives are listed beside
// the kernels in kernels/cpu/activations.cpp. Backward saves only x (f'(x) is recomputed).
// tril(x) keeps or zeroes each element, so its gradient is tril(dL/dy) with the same mask.
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

using kernels::Unary;

namespace {
const char* unary_name(Unary f) {
  switch (f) {
    case Unary::Relu: return "relu";
    case Unary::Relu2: return "relu2";
    case Unary::Gelu: return "gelu";
    case Unary::Silu: return "silu";
    case Unary::Tanh: return "tanh";
    case Unary::Sqrt: return "sqrt";
    case Unary::Rsqrt: return "rsqrt";
    case Unary::Exp: return "exp";
    case Unary::Log: return "log";
    case Unary::Square: return "square";
  }
  return "unary";
}
}  // namespace

Tensor unary(Unary f, const Tensor& x) {
  const std::string op = unary_name(f);
  check_floating(op, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  AVEY_DISPATCH(op, x, unary, f, x.numel(), x.data<T>(), y.data<T>());
  record(y, op, {x}, [f, op, x](const Tensor& g) -> std::vector<Tensor> {
    // dL/dx = f'(x) dL/dy
    Tensor gx = Tensor::empty(x.shape(), g.dtype(), g.device());
    AVEY_DISPATCH(op, g, unary_backward, f, x.numel(), x.data<T>(), g.data<T>(), gx.data<T>());
    return {gx};
  });
  return y;
}

Tensor relu(const Tensor& x) { return unary(Unary::Relu, x); }
Tensor relu2(const Tensor& x) { return unary(Unary::Relu2, x); }
Tensor gelu(const Tensor& x) { return unary(Unary::Gelu, x); }
Tensor silu(const Tensor& x) { return unary(Unary::Silu, x); }
Tensor tanh(const Tensor& x) { return unary(Unary::Tanh, x); }
Tensor sqrt(const Tensor& x) { return unary(Unary::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(Unary::Rsqrt, x); }
Tensor exp(const Tensor& x) { return unary(Unary::Exp, x); }
Tensor log(const Tensor& x) { return unary(Unary::Log, x); }
Tensor square(const Tensor& x) { return unary(Unary::Square, x); }

Tensor tril(const Tensor& x, int64_t diagonal) {
  check_floating("tril", x);
  if (x.ndim() < 2) fail("tril", "needs at least 2 dims, got " + x.describe());
  const int64_t rows = x.size(-2), cols = x.size(-1), batch = rows * cols != 0 ? x.numel() / (rows * cols) : 0;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  AVEY_DISPATCH("tril", x, tril, batch, rows, cols, diagonal, x.data<T>(), y.data<T>());
  // y = mask * x with a fixed 0/1 mask: dL/dx = mask * dL/dy = tril(dL/dy).
  record(y, "tril", {x}, [diagonal](const Tensor& g) -> std::vector<Tensor> { return {tril(g, diagonal)}; });
  return y;
}

}  // namespace engine
