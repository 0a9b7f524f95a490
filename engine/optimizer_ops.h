// The optimizer's kernels as engine calls on the flat parameter and gradient buffers (fp32;
// fp64 on the CPU for tests): each picks the CPU or the GPU kernel by the buffers' device
// (kernels/kernels.h says what each computes). Never recorded.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace engine {

struct AdamWHyper {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double bias1 = 1, bias2 = 1;  // 1 - beta1^t, 1 - beta2^t for the step number t
};
// One AdamW step over p with gradient g and moments m, v (all f32, one device). decay: n bytes on
// that device (nonzero: decay this element) or null for all; bf16_copy (may be undefined): the
// bf16 working copy refreshed in the same pass; grad_scale: one double on the device, the clip
// coefficient applied to g.
void adamw_update(Tensor p, const Tensor& g, Tensor m, Tensor v, const uint8_t* decay, Tensor bf16_copy, const AdamWHyper& h, const double* grad_scale);
// sum of x^2 in fp64 in a fixed order, on the host
double sum_squares(const Tensor& x);
// out (2 doubles on x's device) = {sqrt(sum_squares(x)), clip coefficient for max_norm}, without a
// copy to the host
void clip_norm(const Tensor& x, double max_norm, Tensor out);
// sum_squares of each segment [offset[s], offset[s] + count[s]) of x, one pass, on the host
std::vector<double> segment_sum_squares(const Tensor& x, const std::vector<int64_t>& offset,
                                        const std::vector<int64_t>& count);

}  // namespace engine
