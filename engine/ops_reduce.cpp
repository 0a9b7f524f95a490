// Reductions: over all elements (sum, mean) and over the last dim (sum_cols, mean_cols, max_cols).
// Backward spreads the gradient back over the reduced elements (max: to the first arg-max).
#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

Tensor sum(const Tensor& x) {
  check_floating("sum", x);
  Tensor y = Tensor::empty({1}, x.dtype(), x.device());
  AVEY_DISPATCH("sum", x, sum_all, x.numel(), x.data<T>(), y.data<T>());
  Shape in = x.shape();
  record(y, "sum", {x}, [in](const Tensor& g) -> std::vector<Tensor> {
    // dL/dx_i = dL/dy for every i: broadcast the one value.
    Tensor gx = Tensor::zeros(in, g.dtype(), g.device());
    return {add(gx, g)};
  });
  return y;
}

Tensor mean(const Tensor& x) { return scale(sum(x), 1.0 / double(x.numel())); }

namespace {
// [..., n] -> [..., 1] (a 1-D [n] gives [1]).
Shape reduced_cols_shape(const std::string& op, const Tensor& x) {
  check_floating(op, x);
  if (x.ndim() < 1 || x.size(-1) == 0) fail(op, "needs a last dim of at least one element, got " + x.describe());
  Shape s = x.shape();
  s.back() = 1;
  return s;
}
}  // namespace

Tensor sum_cols(const Tensor& x) {
  Shape s = reduced_cols_shape("sum_cols", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  AVEY_DISPATCH("sum_cols", x, sum_cols, rows, cols, x.data<T>(), y.data<T>());
  Shape in = x.shape();
  record(y, "sum_cols", {x}, [in](const Tensor& g) -> std::vector<Tensor> {
    // y_r = sum_c x_rc  =>  dL/dx_rc = dL/dy_r: g [..., 1] broadcast along each row.
    return {add(Tensor::zeros(in, g.dtype(), g.device()), g)};
  });
  return y;
}

Tensor mean_cols(const Tensor& x) {
  reduced_cols_shape("mean_cols", x);
  return scale(sum_cols(x), 1.0 / double(x.size(-1)));
}

Tensor max_cols(const Tensor& x) {
  Shape s = reduced_cols_shape("max_cols", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  Tensor argmax = Tensor::empty({rows}, DType::I32, x.device());
  AVEY_DISPATCH("max_cols", x, max_cols, rows, cols, x.data<T>(), y.data<T>(), argmax.data<int32_t>());
  Shape in = x.shape();
  record(y, "max_cols", {x}, [in, rows, cols, argmax](const Tensor& g) -> std::vector<Tensor> {
    // y_r = x_r,a(r) with a(r) the first arg-max  =>  dL/dx_rc = [c == a(r)] dL/dy_r.
    Tensor gx = Tensor::zeros(in, g.dtype(), g.device());
    AVEY_DISPATCH("max_cols", g, scatter_cols, rows, cols, argmax.data<int32_t>(), g.data<T>(), gx.data<T>());
    return {gx};
  });
  return y;
}

}  // namespace engine
