// Reductions: over all elements (sum, mean), over each row (row_sums, row_means, row_max: one
// value per row, [..., n] -> [..., 1]) and over each column (column_sums: [..., n] -> [n]).
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

Tensor row_sums(const Tensor& x) {
  Shape s = reduced_cols_shape("row_sums", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  AVEY_DISPATCH("row_sums", x, row_sums, rows, cols, x.data<T>(), y.data<T>());
  Shape in = x.shape();
  record(y, "row_sums", {x}, [in](const Tensor& g) -> std::vector<Tensor> {
    // y_r = sum_c x_rc  =>  dL/dx_rc = dL/dy_r: g [..., 1] broadcast along each row.
    return {add(Tensor::zeros(in, g.dtype(), g.device()), g)};
  });
  return y;
}

Tensor row_means(const Tensor& x) {
  reduced_cols_shape("row_means", x);
  return scale(row_sums(x), 1.0 / double(x.size(-1)));
}

Tensor row_max(const Tensor& x) {
  Shape s = reduced_cols_shape("row_max", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  Tensor argmax = Tensor::empty({rows}, DType::I32, x.device());
  AVEY_DISPATCH("row_max", x, row_max, rows, cols, x.data<T>(), y.data<T>(), argmax.data<int32_t>());
  Shape in = x.shape();
  record(y, "row_max", {x}, [in, rows, cols, argmax](const Tensor& g) -> std::vector<Tensor> {
    // y_r = x_r,a(r) with a(r) the first arg-max  =>  dL/dx_rc = [c == a(r)] dL/dy_r.
    Tensor gx = Tensor::zeros(in, g.dtype(), g.device());
    AVEY_DISPATCH("row_max", g, scatter_cols, rows, cols, argmax.data<int32_t>(), g.data<T>(), gx.data<T>());
    return {gx};
  });
  return y;
}

Tensor column_sums(const Tensor& x) {
  // One product with a row of ones, [1, rows] x [rows, n]: the gradient of a row-broadcast operand
  // (a bias, a gain). Recorded through matmul.
  check_floating("column_sums", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor ones = Tensor::full({1, rows}, 1.0, x.dtype(), x.device());
  return reshape(matmul(ones, reshape(x, {rows, cols})), {cols});
}

}  // namespace engine
