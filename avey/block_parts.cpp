#include "avey/block_parts.h"

#include "engine/dispatch.h"

namespace avey::block_parts {

using namespace engine;

kernels::Unary enricher_unary(Activation a) {
  switch (a) {
    case Activation::Relu2: return kernels::Unary::Relu2;
    case Activation::Gelu: return kernels::Unary::Gelu;
    case Activation::Silu: return kernels::Unary::Silu;
    default: return kernels::Unary::Relu;
  }
}

bool keeps_preactivation(const Config& cfg) {
  const Activation a = cfg.enricher_activation;
  return a != Activation::None && a != Activation::Relu && a != Activation::Relu2;
}

Tensor mul_per_context(const Tensor& x, const Tensor& w) {
  const int64_t N = x.size(0), R = x.size(1), C = x.size(2);
  return reshape(mul(reshape(x, {N, R * C}), reshape(w, {R * C})), {N, R, C});
}

NormGrads norm_backward_residual(const Tensor& h, const Tensor& gain, const Tensor& rstd, const Tensor& gy,
                                 const Tensor& gres, bool want_gbo) {
  const int64_t rows = h.size(0), d = h.size(1);
  NormGrads r;
  r.gh = Tensor::empty(h.shape(), h.dtype(), h.device());
  r.gg = Tensor::empty(gain.shape(), gain.dtype(), gain.device());
  if (gy.is_cuda()) {
    ::engine::profile::Scope prof("rmsnorm", gy.device());
    if (want_gbo) r.gbo = Tensor::empty({d}, gres.dtype(), gres.device());
    AVEY_DISPATCH_CUDA("rmsnorm_backward", gy, rmsnorm_backward_residual, rows, d, h.data<T>(), gain.data<T>(),
                       rstd.data<T>(), gy.data<T>(), gres.data<T>(), r.gh.data<T>(), r.gg.data<T>(),
                       r.gbo.defined() ? r.gbo.data<T>() : nullptr);
  } else {
    AVEY_DISPATCH("rmsnorm_backward", gy, rmsnorm_backward, rows, d, h.data<T>(), gain.data<T>(), rstd.data<T>(),
                  gy.data<T>(), r.gh.data<T>(), r.gg.data<T>());
    r.gh = add(r.gh, gres);
  }
  return r;
}

}  // namespace avey::block_parts
