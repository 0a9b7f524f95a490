// A model's loss checked two ways: fused (the engine's fast layers) == composed (every layer from
// recorded primitives, Model::set_composed) in value and in every parameter's gradient, then an
// fp64 finite-difference check of every parameter. The model must be fp64 on the CPU.
#pragma once
#include <cmath>
#include <functional>

#include "avey/model.h"
#include "tests/testing.h"

namespace testing {

inline void check_fused_composed_loss(avey::Model& model, const std::function<engine::Tensor()>& loss) {
  model.zero_grad();
  engine::Tensor lf = loss();
  lf.backward();
  engine::Tensor gf = model.flat_grads().clone();
  model.set_composed(true);
  model.zero_grad();
  engine::Tensor lc = loss();
  lc.backward();
  model.set_composed(false);
  CHECK(std::abs(lf.item() - lc.item()) < 1e-12 * std::abs(lc.item()));
  CHECK(rel_diff(gf, model.flat_grads()) < 1e-10);
  std::vector<engine::Tensor> params;
  for (avey::Param& p : model.params()) params.push_back(p.value);
  check_gradients([&](const std::vector<engine::Tensor>&) { return loss(); }, params);
}

}  // namespace testing
