#include "avey/fuser.h"

#include "avey/activation.h"

namespace avey {

using namespace engine;

Tensor fuser_composed(const Tensor& c, const Tensor& zh, const Tensor& weight, const Tensor& bias) {
  Tensor in = zh.defined() ? concat_cols({c, zh}) : c;
  return add(matmul(in, weight, false, true), bias);
}

Tensor fuser(const Tensor& c, const Tensor& zh, const Tensor& weight, const Tensor& bias) {
  const int64_t h = c.size(-1), mh = zh.defined() ? zh.size(-1) : 0;
  if (weight.ndim() != 2 || weight.size(1) != h + mh)
    fail("fuser", "weight must be [d, " + std::to_string(h + mh) + "], got " + weight.describe());
  Tensor f;
  {
    NoGrad no_grad;
    if (mh == 0) {
      f = add(matmul(c, weight, false, true), bias);
    } else {
      std::vector<Tensor> o = split_cols(weight, {h, mh});
      f = add(add(matmul(c, o[0], false, true), matmul(zh, o[1], false, true)), bias);
    }
  }
  record(f, "avey.fuser", {c, zh, weight, bias}, [c, zh, weight, bias, h, mh](const Tensor& gf) -> std::vector<Tensor> {
    Tensor gc, gzh, gw, gb;
    Tensor oc = weight, oh;
    if (mh > 0) {
      std::vector<Tensor> o = split_cols(weight, {h, mh});
      oc = o[0], oh = o[1];
    }
    if (c.requires_grad()) gc = matmul(gf, oc);
    if (mh > 0 && zh.requires_grad()) gzh = matmul(gf, oh);
    if (weight.requires_grad()) {
      Tensor g2 = as_matrix(gf);
      gw = matmul(g2, as_matrix(c), true, false);
      if (mh > 0) gw = concat_cols({gw, matmul(g2, as_matrix(zh), true, false)});
    }
    if (bias.requires_grad()) gb = sum_rows(gf);
    return {gc, gzh, gw, gb};
  });
  return f;
}

}  // namespace avey
