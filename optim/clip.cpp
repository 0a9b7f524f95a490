#include "optim/clip.h"

#include <cmath>
#include <stdexcept>

#include "engine/optimizer_ops.h"
#include "kernels/elementwise_math.h"

namespace optim {

using engine::DType;
using engine::Device;
using engine::Tensor;

namespace {

void check_grads(const std::string& op, const Tensor& g) {
  if (!g.defined()) throw std::invalid_argument(op + ": grads is undefined");
  const bool ok = g.dtype() == DType::F32 || (g.dtype() == DType::F64 && g.device() == Device::CPU);
  if (!ok) throw std::invalid_argument(op + ": expected an f32 gradient buffer (f64 on the CPU), got " + g.describe());
}

}  // namespace

double grad_norm(const Tensor& grads) {
  check_grads("grad_norm", grads);
  const double ss = engine::sum_squares(grads);
  return std::sqrt(ss);
}

double clip_scale(double norm, double max_norm) { return kernels::clip_coefficient(norm, max_norm); }

double ClipResult::norm() const { return stats.to(Device::CPU).data<double>()[0]; }
double ClipResult::scale() const { return stats.to(Device::CPU).data<double>()[1]; }

ClipResult clip_grad_norm(const Tensor& grads, double max_norm) {
  check_grads("clip_grad_norm", grads);
  ClipResult r{Tensor::empty({2}, DType::F64, grads.device())};
  engine::clip_norm(grads, max_norm, r.stats);
  return r;
}

std::vector<double> segment_norms(const Tensor& grads, const std::vector<Segment>& segments) {
  check_grads("segment_norms", grads);
  check_segments(segments, grads.numel());
  std::vector<int64_t> offset(segments.size()), count(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) {
    offset[s] = segments[s].offset;
    count[s] = segments[s].numel;
  }
  std::vector<double> out = engine::segment_sum_squares(grads, offset, count);
  for (double& x : out) x = std::sqrt(x);
  return out;
}

}  // namespace optim
