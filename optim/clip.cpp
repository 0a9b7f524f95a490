#include "optim/clip.h"

#include <cmath>
#include <stdexcept>

#include "kernels/cpu/kernels.h"
#include "kernels/elementwise_math.h"
#ifdef AVEY_HAVE_CUDA
#include "kernels/cuda/kernels.h"
#endif

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
  double ss = 0;
  if (grads.device() == Device::CPU) {
    ss = grads.dtype() == DType::F32 ? kernels::cpu::sum_squares<float>(grads.numel(), grads.data<float>())
                                     : kernels::cpu::sum_squares<double>(grads.numel(), grads.data<double>());
  } else {
#ifdef AVEY_HAVE_CUDA
    ss = kernels::cuda::sum_squares<float>(grads.numel(), grads.data<float>());
#else
    throw std::invalid_argument("grad_norm: this build has no CUDA backend");
#endif
  }
  return std::sqrt(ss);
}

double clip_scale(double norm, double max_norm) { return kernels::clip_coefficient(norm, max_norm); }

double ClipResult::norm() const { return stats.to(Device::CPU).data<double>()[0]; }
double ClipResult::scale() const { return stats.to(Device::CPU).data<double>()[1]; }

ClipResult clip_grad_norm(const Tensor& grads, double max_norm) {
  check_grads("clip_grad_norm", grads);
  ClipResult r{Tensor::empty({2}, DType::F64, grads.device())};
  double* out = r.stats.data<double>();
  if (grads.device() == Device::CPU) {
    if (grads.dtype() == DType::F32) kernels::cpu::clip_norm<float>(grads.numel(), grads.data<float>(), max_norm, out);
    else kernels::cpu::clip_norm<double>(grads.numel(), grads.data<double>(), max_norm, out);
  } else {
#ifdef AVEY_HAVE_CUDA
    kernels::cuda::clip_norm<float>(grads.numel(), grads.data<float>(), max_norm, out);
#else
    throw std::invalid_argument("clip_grad_norm: this build has no CUDA backend");
#endif
  }
  return r;
}

std::vector<double> segment_norms(const Tensor& grads, const std::vector<Segment>& segments) {
  check_grads("segment_norms", grads);
  check_segments(segments, grads.numel());
  const int64_t nseg = int64_t(segments.size());
  std::vector<int64_t> offset(segments.size()), count(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) {
    offset[s] = segments[s].offset;
    count[s] = segments[s].numel;
  }
  std::vector<double> out(segments.size(), 0.0);
  if (grads.device() == Device::CPU) {
    if (grads.dtype() == DType::F32)
      kernels::cpu::segment_sum_squares<float>(nseg, offset.data(), count.data(), grads.data<float>(), out.data());
    else
      kernels::cpu::segment_sum_squares<double>(nseg, offset.data(), count.data(), grads.data<double>(), out.data());
  } else {
#ifdef AVEY_HAVE_CUDA
    kernels::cuda::segment_sum_squares<float>(nseg, offset.data(), count.data(), grads.data<float>(), out.data());
#else
    throw std::invalid_argument("segment_norms: this build has no CUDA backend");
#endif
  }
  for (double& x : out) x = std::sqrt(x);
  return out;
}

}  // namespace optim
