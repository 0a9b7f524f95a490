// The CUDA kernels: the engine's kernel list (kernels/kernel_list.h, declared in namespace
// kernels::cuda by kernels/kernels.h, which says what each computes), with device pointers (gloss
// in cross_entropy_backward too). T is float or bf16; for bf16 the arithmetic runs in fp32 and
// only storage is bf16 (the optimizer's kernels: float only). fill and convert are also
// instantiated for double and int32_t (engine/tensor.cpp uses them for every dtype). Below, the
// few kernels only the GPU has (its bf16 fast paths).
//
// All kernels run on one stream (kernels/cuda/memory.h) and are asynchronous: errors from a
// launch are reported at once, errors found while running (an index out of range) at the next
// synchronize() or copy to the host.
#pragma once
#include <cstdint>

#include "kernels/cuda/memory.h"
#include "kernels/kernels.h"

namespace kernels::cuda {

// bf16 operands, fp32 result: C = op(A) op(B) + beta C, one product (the tied head sums its
// embedding gradient over chunks of rows this way, in fp32 and with no extra pass).
void matmul_bf16_f32(const bf16* A, const bf16* B, float* C, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                     double beta);

// Cross-entropy of bf16 logits in one kernel (fp32 inside): loss [rows] in fp32, and when
// grad_scale != 0 the gradient grad_scale (softmax - onehot) written over the logits.
void cross_entropy_bf16(int64_t rows, int64_t vocab, bf16* logits, const int32_t* target, int32_t ignore, float* loss,
                        double grad_scale);

}  // namespace kernels::cuda
