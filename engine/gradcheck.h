// A finite-difference gradient checker in fp64.
//
// For f(inputs) -> output, it compares the tape's gradient of L = sum(output * W), with W a
// fixed random tensor (so every output element matters), against central differences
//   dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h
// for every element of every input that requires a gradient. The error reported per input is
// normwise relative: ||analytic - numeric|| / ||numeric||.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

struct GradCheck {
  double max_error = 0;  // the largest normwise relative error over the checked inputs
  int worst_input = -1;
  std::string report;    // one line per input: "input 0 f64[3, 4]: rel error 2.1e-10"
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// inputs: CPU f64 tensors; the ones with requires_grad are checked.
GradCheck gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, double h = 1e-6, uint64_t seed = 7);

}  // namespace engine
