#include "avey/enricher.h"

#include "avey/activation.h"

namespace avey {

using namespace engine;

Tensor enricher_composed(const Tensor& y, const Tensor& weight, const Tensor& bias, Activation act) {
  return activate(act, add(matmul(y, weight, false, true), bias));
}

Tensor enricher(const Tensor& y, const Tensor& weight, const Tensor& bias, Activation act) {
  Tensor pre, z;
  {
    NoGrad no_grad;
    pre = add(matmul(y, weight, false, true), bias);
    z = activate(act, pre);
  }
  if (act == Activation::None) pre = Tensor();  // z is pre itself; capturing it would make a cycle
  record(z, "avey.enricher", {y, weight, bias}, [y, weight, bias, act, pre](const Tensor& gz) -> std::vector<Tensor> {
    Tensor gp = activation_grad(act, pre, gz);
    Tensor gy, gw, gb;
    if (y.requires_grad()) gy = matmul(gp, weight);
    if (weight.requires_grad()) gw = matmul(as_matrix(gp), as_matrix(y), true, false);
    if (bias.requires_grad()) gb = sum_rows(gp);
    return {gy, gw, gb};
  });
  return z;
}

}  // namespace avey
