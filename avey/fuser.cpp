#include "avey/fuser.h"

namespace avey {

using namespace engine;

Tensor fuser_composed(const Tensor& c, const Tensor& zh, const Tensor& weight, const Tensor& bias) {
  Tensor in = zh.defined() ? concat_cols({c, zh}) : c;
  return add(matmul(in, weight, false, true), bias);
}

}  // namespace avey
