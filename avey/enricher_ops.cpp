#include "avey/enricher_ops.h"

#include "avey/activation.h"
#include "avey/kernels/kernels.h"
#include "engine/dispatch.h"

namespace avey {

using namespace engine;

namespace {

// The kernels take the function and a flag (Relu stands in for None: has_act is then false).
kernels::Unary unary_for(Activation a) { return a == Activation::None ? kernels::Unary::Relu : unary_of(a); }

}  // namespace

bool keeps_preactivation(Activation a) {
  return a != Activation::None && a != Activation::Relu && a != Activation::Relu2;
}

EnrichedParts enrich_split(Tensor& p, const Tensor& bias, Activation act, int64_t w0, int64_t w1, const Columns& rest,
                           bool keep_p, bool normalise, double eps) {
  const int64_t m = p.size(-1), rows = p.numel() / m, w2 = m - w0 - w1;
  if (bias.numel() != m || w0 <= 0 || w1 < 0 || w2 < 0 || (w2 > 0) != rest.defined() ||
      (w2 > 0 && (rest.width != w2 || rest.rows() != rows)))
    fail("enrich_split", "the parts do not match P " + p.describe());
  EnrichedParts z;
  z.z0 = Tensor::empty({rows, w0}, p.dtype(), p.device());
  if (w1 > 0) z.z1 = Tensor::empty({rows, w1}, p.dtype(), p.device());
  if (normalise) {
    z.zn = Tensor::empty({rows, w0}, p.dtype(), p.device());
    z.denom = Tensor::empty({rows}, p.dtype(), p.device());
  }
  AVEY_DISPATCH_IN(::avey::kernels, "bias_act_split", p, bias_act_split,
                   {.rows = rows, .cols = m, .p = p.data<T>(), .bias = bias.data<T>(),
                    .has_act = act != Activation::None, .f = unary_for(act), .w0 = w0, .w1 = w1,
                    .z0 = z.z0.data<T>(), .z1 = w1 > 0 ? z.z1.data<T>() : nullptr,
                    .z2 = w2 > 0 ? rest.data<T>() : nullptr, .ld2 = w2 > 0 ? rest.stride() : 0, .keep_p = keep_p,
                    .zn = normalise ? z.zn.data<T>() : nullptr, .denom = normalise ? z.denom.data<T>() : nullptr,
                    .eps = eps});
  return z;
}

Tensor enrich_split_backward(const Tensor& p, const EnrichedParts& z, const Columns& rest, Activation act,
                             const Tensor& g0, const Tensor& g1, const Columns& grest, Tensor* gbias) {
  const int64_t rows = z.z0.size(0), w0 = z.z0.size(1), w1 = z.z1.defined() ? z.z1.size(1) : 0;
  const int64_t m = w0 + w1 + (rest.defined() ? rest.width : 0);
  Tensor gp = Tensor::empty({rows, m}, g0.dtype(), g0.device());
  if (gbias && !gbias->defined()) *gbias = Tensor::empty({m}, g0.dtype(), g0.device());
  if (rest.defined() != grest.defined() || (rest.defined() && rest.stride() != grest.stride()))
    fail("enrich_split_backward", "the rest and its gradient must be windows of one layout");
  AVEY_DISPATCH_IN(::avey::kernels, "act_grad_concat", gp, act_grad_concat,
                   {.rows = rows, .cols = m, .p = p.defined() ? p.data<T>() : nullptr, .z0 = z.z0.data<T>(),
                    .z1 = w1 > 0 ? z.z1.data<T>() : nullptr, .z2 = rest.defined() ? rest.data<T>() : nullptr,
                    .ld2 = rest.defined() ? rest.stride() : 0, .has_act = act != Activation::None, .f = unary_for(act),
                    .w0 = w0, .w1 = w1, .g0 = g0.data<T>(), .g1 = w1 > 0 ? g1.data<T>() : nullptr,
                    .g2 = grest.defined() ? grest.data<T>() : nullptr, .gp = gp.data<T>(),
                    .gbias = gbias ? gbias->data<T>() : nullptr});
  return gp;
}

}  // namespace avey
