#include "engine/optimizer_ops.h"

#include <initializer_list>

#include "kernels/kernels.h"

// kernels::cpu::fn<T>(args) (T float or double) or kernels::cuda::fn<float>(args) for x's
// device: the GPU instantiates the optimizer's kernels for float only.
#ifdef AVEY_HAVE_CUDA
#define OPTIM_CUDA(op, x, fn, ...)                                                          \
  if (x.dtype() != DType::F32) fail(op, "needs f32 on the GPU, got " + x.describe());       \
  using T = float;                                                                          \
  return kernels::cuda::fn<T>(__VA_ARGS__);
#else
#define OPTIM_CUDA(op, x, fn, ...) fail(op, "this build has no CUDA backend");
#endif
#define OPTIM_DISPATCH(op, x, fn, ...)                                            \
  do {                                                                            \
    if (x.device() == Device::CPU) {                                              \
      if (x.dtype() == DType::F32) {                                              \
        using T = float;                                                          \
        return kernels::cpu::fn<T>(__VA_ARGS__);                                  \
      }                                                                           \
      if (x.dtype() == DType::F64) {                                              \
        using T = double;                                                         \
        return kernels::cpu::fn<T>(__VA_ARGS__);                                  \
      }                                                                           \
      fail(op, "needs f32 or f64, got " + x.describe());                          \
    }                                                                             \
    OPTIM_CUDA(op, x, fn, __VA_ARGS__)                                            \
  } while (0)

namespace engine {

void adamw_update(Tensor p, const Tensor& g, Tensor m, Tensor v, const uint8_t* decay, Tensor bf16_copy, const AdamWHyper& h, const double* grad_scale) {
  const std::string op = "adamw";
  for (const Tensor* t : std::initializer_list<const Tensor*>{&g, &m, &v}) {
    check_same_device(op, p, *t);
    check_same_dtype(op, p, *t);
    if (t->numel() != p.numel()) fail(op, "buffers of different sizes: " + p.describe() + " and " + t->describe());
  }
  kernels::bf16* half = bf16_copy.defined() ? bf16_copy.data<kernels::bf16>() : nullptr;
  OPTIM_DISPATCH(op, p, adamw,
                 {.n = p.numel(), .p = p.data<T>(), .g = g.data<T>(), .m = m.data<T>(), .v = v.data<T>(),
                  .decay = decay, .p_bf16 = half, .lr = h.lr, .b1 = h.beta1, .b2 = h.beta2, .eps = h.eps,
                  .wd = h.weight_decay, .bias1 = h.bias1, .bias2 = h.bias2, .grad_scale = grad_scale});
}

double sum_squares(const Tensor& x) { OPTIM_DISPATCH("sum_squares", x, sum_squares, x.numel(), x.data<T>()); }

void clip_norm(const Tensor& x, double max_norm, Tensor out) {
  if (out.dtype() != DType::F64 || out.numel() != 2 || out.device() != x.device())
    fail("clip_norm", "out must be 2 f64 on the gradient's device, got " + out.describe());
  OPTIM_DISPATCH("clip_norm", x, clip_norm, x.numel(), x.data<T>(), max_norm, out.data<double>());
}

std::vector<double> segment_sum_squares(const Tensor& x, const std::vector<int64_t>& offset,
                                        const std::vector<int64_t>& count) {
  std::vector<double> out(offset.size(), 0.0);
  if (count.size() != offset.size()) fail("segment_sum_squares", "one count per offset");
  auto run = [&]() {
    OPTIM_DISPATCH("segment_sum_squares", x, segment_sum_squares, int64_t(offset.size()), offset.data(), count.data(),
                   x.data<T>(), out.data());
  };
  run();
  return out;
}

}  // namespace engine
