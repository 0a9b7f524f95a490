// The engine's kernels: raw, contiguous, row-major arrays in, raw arrays out. One declaration
// list (kernels/kernel_list.h) serves both backends: it is included once into kernels::cpu
// (plain loops and Eigen, OpenMP; instantiated for float and double, double for the gradient
// checks) and once into kernels::cuda (instantiated for float and bf16, arithmetic in fp32), so
// engine/dispatch.h can call kernels::cpu::name<T>(...) or kernels::cuda::name<T>(...) with the
// same arguments. Kernels the GPU alone has are in kernels/cuda/kernels.h.
//
// Conventions: n = number of elements; rows x cols = a matrix seen as [.., cols] flattened to
// rows; "_backward" kernels take the forward's inputs/outputs and dL/dy, and write dL/dx.
// Kernels with many arguments take one struct (below) whose fields are named.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace kernels {

// How the second operand of a binary op is broadcast over the first (of rows x cols elements).
enum class Broadcast : uint8_t {
  None,    // same shape
  Row,     // b has `cols` elements, one per column: the same row added to every row (a bias)
  Column,  // b has `rows` elements, one per row: a per-row scalar
  Scalar,  // b has one element
};

enum class Binary : uint8_t { Add, Sub, Mul, Div };

// Element-wise functions with their derivatives. Relu2 = relu(x)^2; Gelu uses the exact erf.
enum class Unary : uint8_t { Relu, Relu2, Gelu, Silu, Tanh, Sqrt, Rsqrt, Exp, Log, Square };

// How row L2-normalisation places its epsilon.
enum class NormEps : uint8_t {
  Outside,  // x / (||x|| + eps)        (the ranker)
  Inside,   // x / sqrt(||x||^2 + eps)  (the contextualizer's cosine)
  Max,      // x / max(||x||, eps)      (Avey-B)
};

// One parameter's gradient for accumulate_grads: dst (n fp32 elements) becomes
// (replace ? 0 : dst) + (part[0] + part[1] + ...), each part n elements of fp32 or bf16, added in
// fp32 in the order given (autograd's last step: the gradients that reached a parameter, e.g. the
// head's and the embedding's for a tied table, into its slice of the flat gradient buffer).
constexpr int kGradParts = 4;
struct GradSlot {
  float* dst = nullptr;
  int64_t n = 0;
  bool replace = false;
  int parts = 0;
  const void* part[kGradParts] = {};
  bool part_bf16[kGradParts] = {};
};

// A batch of matrix products: C_b = alpha op(A_b) op(B_b) + beta C_b for b < batch, op =
// transpose when ta / tb; op(A_b) is m x k, op(B_b) k x n, C_b m x n, all row-major and
// contiguous; X_b starts at X + b * stride_x (a stride of 0 shares one matrix across the batch).
// Accumulates in fp32 (fp64 for double).
// `triangle` says what a square product may leave out (the contextualizer's, avey/contextualizer_ops.h):
//   LowerC  only C's lower triangle (j <= i) is wanted (m == n). The CPU computes C's tiles that
//           reach it and writes zeros over the rest of C; the GPU computes the whole product.
//   LowerA  op(A) is lower triangular (m == k): row i of C reads op(A)[i, 0..i] and B's rows 0..i.
//   UpperA  op(A) is upper triangular (m == k): row i reads op(A)[i, i..k) and B's rows i..k.
// The zeros left out add nothing, so the result is C's (for LowerC: its lower triangle) either way.
enum class Triangle : uint8_t { None, LowerC, LowerA, UpperA };
template <class T>
struct Gemm {
  const T* a = nullptr;
  const T* b = nullptr;
  T* c = nullptr;
  int64_t m = 0, n = 0, k = 0;
  bool ta = false, tb = false;
  double alpha = 1.0, beta = 0.0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
  Triangle triangle = Triangle::None;
};

// out = x w^T + bias + residual: a Linear layer (x [rows, in], w [cols, in] stored like
// nn.Linear, bias [cols]) with a residual [rows, cols] added; the GPU adds both in the product's
// epilogue (no separate pass).
template <class T>
struct LinearResidual {
  const T* x = nullptr;
  const T* w = nullptr;
  const T* bias = nullptr;
  const T* residual = nullptr;
  T* out = nullptr;
  int64_t rows = 0, in = 0, cols = 0;
};

// RMSNorm's backward, y = x rstd g with rstd = 1 / sqrt(mean(x^2) + eps) saved per row:
//   gx = rstd (g gy - x rstd^2 mean(x g gy)) (+ gres: a residual's gradient summed in the same
//   pass, when the normalised x also feeds a residual), gg = column sums of gy x rstd
//   (+ gres_sum = column sums of gres: the gradient of a bias added after that residual).
// gres and gres_sum may be null.
template <class T>
struct RmsNormBackward {
  int64_t rows = 0, cols = 0;
  const T* x = nullptr;
  const T* g = nullptr;
  const T* rstd = nullptr;
  const T* gy = nullptr;
  const T* gres = nullptr;
  T* gx = nullptr;
  T* gg = nullptr;
  T* gres_sum = nullptr;
};

// L2 row normalisation's backward (y = x / norm(x), NormEps gives norm): gx[r] = the backward at
// row r of the row gradient G[r], + E[r]. Plainly G = gy and E = extra (may be null: 0). With a
// row map (ptr, src: engine::RowMap), G[r] is the sum of gy's rows src[ptr[r] .. ptr[r+1]) in
// that order and E[r] the same sum of extra's rows: the packed contexts' dZ0, a padding row's
// gradient summed over the contexts that read it. The first summed_rows rows may sum many rows
// (the GPU gives them a block each). denom (the forward's saved denominators) may be null: it is
// then recomputed from x. With a map or extra, the GPU needs rows of whole 16-byte vectors.
template <class T>
struct L2NormBackward {
  NormEps mode = NormEps::Outside;
  int64_t rows = 0, cols = 0;
  const T* x = nullptr;
  double eps = 0.0;
  const T* denom = nullptr;
  const T* gy = nullptr;
  T* gx = nullptr;
  const int32_t* ptr = nullptr;  // the row map, or null
  const int32_t* src = nullptr;
  const T* extra = nullptr;
  int64_t summed_rows = 0;
};

// One fused AdamW step (torch.optim.AdamW, amsgrad=False; the order of operations of PyTorch's
// fused kernel) over n elements of a flat parameter buffer p and its gradient g, with the
// moments m and v (all T, fp32 in practice; double for tests). Per element i:
//   gi = *grad_scale * g[i]                      (the clip coefficient, read on the kernel's
//                                                 device; grad_scale == nullptr: 1)
//   p[i] *= 1 - lr * wd                          (decoupled decay; only where decay[i] != 0,
//                                                 every element when decay == nullptr)
//   m[i] = b1 m[i] + (1 - b1) gi
//   v[i] = b2 v[i] + (1 - b2) gi^2
//   p[i] -= (lr / bias1) * m[i] / (sqrt(v[i]) / sqrt(bias2) + eps)
//   p_bf16[i] = bf16(p[i])                       (when p_bf16 != nullptr: the working copy)
// bias1 = 1 - b1^t and bias2 = 1 - b2^t for the step number t >= 1, computed by the caller.
// decay (n bytes) and p_bf16 (n elements) live on the kernel's device, like p.
template <class T>
struct AdamWArgs {
  int64_t n = 0;
  T* p = nullptr;
  const T* g = nullptr;
  T* m = nullptr;
  T* v = nullptr;
  const uint8_t* decay = nullptr;
  bf16* p_bf16 = nullptr;
  double lr = 0, b1 = 0, b2 = 0, eps = 0, wd = 0, bias1 = 1, bias2 = 1;
  const double* grad_scale = nullptr;
};

namespace cpu {
#include "kernels/kernel_list.h"
}  // namespace cpu

namespace cuda {
#include "kernels/kernel_list.h"
}  // namespace cuda

}  // namespace kernels
