#include "engine/gradcheck.h"

#include <fmt/format.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace engine {

static double weighted_sum(const Tensor& out, const Tensor& w) {
  auto o = out.to_vector<double>(), ww = w.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += o[i] * ww[i];
  return s;
}

GradCheck gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, double h, uint64_t seed) {
  for (const Tensor& x : inputs)
    if (x.defined() && is_floating(x.dtype()) && (x.dtype() != DType::F64 || x.device() != Device::CPU))
      fail("gradcheck", "inputs must be CPU f64, got " + x.describe());

  // Analytic gradients through the tape.
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).set_grad(Tensor());
  Tensor out = f(inputs);
  Rng rng(seed);
  Tensor w = Tensor::randn(out.shape(), rng, 1.0, DType::F64);
  Tensor loss = sum(mul(out, w));
  loss.backward();

  GradCheck result;
  NoGrad no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad().defined() ? x.grad() : Tensor::zeros(x.shape(), DType::F64);
    auto a = analytic.to_vector<double>();
    double* xp = x.data<double>();
    double diff2 = 0, ref2 = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = xp[i];
      xp[i] = orig + h;
      double lp = weighted_sum(f(inputs), w);
      xp[i] = orig - h;
      double lm = weighted_sum(f(inputs), w);
      xp[i] = orig;
      double numeric = (lp - lm) / (2 * h);
      diff2 += (a[size_t(i)] - numeric) * (a[size_t(i)] - numeric);
      ref2 += numeric * numeric;
    }
    double err = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-12);
    if (ref2 == 0 && diff2 == 0) err = 0;
    result.report += fmt::format("input {} {}: rel error {:.3g}\n", k, x.describe(), err);
    if (err >= result.max_error) {
      result.max_error = err;
      result.worst_input = int(k);
    }
  }
  return result;
}

}  // namespace engine
