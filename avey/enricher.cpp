#include "avey/enricher.h"

#include "avey/activation.h"

namespace avey {

using namespace engine;

Tensor enricher_composed(const Tensor& y, const Tensor& weight, const Tensor& bias, Activation act) {
  return activate(act, add(matmul(y, weight, false, true), bias));
}

}  // namespace avey
