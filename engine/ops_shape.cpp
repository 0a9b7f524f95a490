// Ops that move data without arithmetic: reshape, row and column slices, concatenation,
// gathering rows by index, dtype casts. Their backward passes move the gradient back.
#include <fmt/format.h>

#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (numel(shape) != x.numel()) fail("reshape", "cannot view " + x.describe() + " as " + to_string(shape));
  Tensor y = x.view(0, shape);
  Shape in = x.shape();
  record(y, "reshape", {x}, [in](const Tensor& g) -> std::vector<Tensor> { return {reshape(g, in)}; });
  return y;
}

}  // namespace engine
