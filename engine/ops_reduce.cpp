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

}  // namespace engine
