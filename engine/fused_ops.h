// The pieces a fused layer builds its forward and backward from. Unlike engine/ops.h these are
// never recorded: a fused layer (avey/block.h) runs them under one autograd node whose backward
// it derives by hand. Each works on CPU and CUDA tensors behind this one declaration and picks
// the backend itself (the GPU often does in one pass what the CPU does in two), so the layer's
// code holds no device branches and no raw pointers.
#pragma once
#include "engine/ops.h"

namespace engine {

// A column window of a row-major matrix: columns [begin, begin + width) of t [rows, cols] (its
// rows t.size(-1) elements apart). Kernels read and write such windows in place, so a fused layer
// can lay several results side by side in one matrix without a copy.
struct Columns {
  Tensor t;
  int64_t begin = 0, width = 0;
  bool defined() const { return t.defined(); }
  int64_t rows() const { return t.numel() / t.size(-1); }
  int64_t stride() const { return t.size(-1); }  // elements between rows
  Columns cols(int64_t b, int64_t w) const { return {t, begin + b, w}; }
  template <class T> T* data() const {  // the window's first element (a handle may write what it points to)
    Tensor h = t;
    return h.data<T>() + begin;
  }
};
inline Columns all_columns(const Tensor& t) { return {t, 0, t.size(-1)}; }
// The window as a contiguous [rows, width] tensor (t itself when the window is all of it).
Tensor copy_of(const Columns& c);
void copy_into(const Tensor& x, const Columns& c);  // x [rows, width] written into the window
void add_into(const Tensor& x, const Columns& c);   // x [rows, width] added into the window

// ---- RMSNorm, split into its passes ----
// y = x rstd g, rstd = 1 / sqrt(mean(x^2) + eps) per row (saved for the backward), x [rows, d].
struct RmsNormRows {
  Tensor y, rstd;
};
RmsNormRows rmsnorm_rows(const Tensor& x, const Tensor& gain, double eps);
// dx = rmsnorm'(dy) + dres (dres may be undefined) and the gain's gradient; with
// want_res_sum, also dres's column sums (the gradient of a bias added after a residual whose
// gradient is dres). The GPU does it all in one pass.
struct RmsNormGrads {
  Tensor gx, gg, gres_sum;
};
RmsNormGrads rmsnorm_rows_backward(const Tensor& x, const Tensor& gain, const Tensor& rstd, const Tensor& gy,
                                   const Tensor& gres, bool want_res_sum);

// ---- products ----
// x [rows, in] w^T ([cols, in], stored like nn.Linear) + bias [cols] + residual [rows, cols]: one
// product with the residual and the bias in its epilogue on the GPU.
Tensor linear_residual(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual);
// One operand of a batch of products: matrix b starts at element offset + b * stride of t (a
// stride of 0 shares one matrix), its rows contiguous.
struct MatrixBatch {
  Tensor t;
  int64_t offset = 0, stride = 0;
};
// C_b = op(A_b) op(B_b) + beta C_b for b < batch; op(A_b) m x k, op(B_b) k x n, C_b m x n.
// triangle: the half of a square product that may be left out (kernels::Triangle).
void matmul_into(const MatrixBatch& a, const MatrixBatch& b, const MatrixBatch& c, int64_t batch, int64_t m, int64_t n,
                 int64_t k, bool ta, bool tb, double beta, kernels::Triangle triangle = kernels::Triangle::None);

// ---- element-wise ----
// f'(x) (.) gy, for any kernels::Unary f.
Tensor unary_backward(kernels::Unary f, const Tensor& x, const Tensor& gy);
// ya = g (.) a and yb = g (.) b in one pass over g (the backward of a gate: g read in place).
struct ProductPair {
  Tensor ya, yb;
};
ProductPair mul_pair(const Columns& g, const Tensor& a, const Tensor& b);

// ---- L2 row normalisation's backward with a row map ----
// dx = l2norm'(G) + E at each row of x [rows, cols] (the forward's eps and mode), where without
// a map G = gy and E = extra, and with one G and E are the sums of gy's and extra's rows that the
// map gives (RowMap: a row's gradient summed over the rows that read it). extra may be undefined
// (0). summed_rows: how many of the first rows may sum many rows (the GPU gives each a block).
Tensor l2norm_rows_backward(kernels::NormEps mode, const Tensor& x, double eps, const Tensor& gy, const Tensor& extra,
                            const RowMap* map = nullptr, int64_t summed_rows = 0);

// ---- the largest column of each row (the first on ties, never NaN), i32 [rows] ----
Tensor row_argmax(const Tensor& x);

// ---- L1 row normalisation's backward (engine::l1norm_rows's, also a fused layer's piece) ----
Tensor l1norm_rows_backward(const Tensor& x, double eps, const Tensor& gy);

// ---- cross-entropy row by row (a fused head's pieces; engine::cross_entropy is the recorded op) ----
// loss[r] = logsumexp(logits[r]) - logits[r, t_r], 0 where t_r == ignore, written into `loss`
// (rows elements of the loss dtype, e.g. a view); returns the logsumexps (saved for the backward).
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets, int32_t ignore, Tensor loss);
// dlogits = scale (softmax(logits) - onehot(t)), zero rows where t == ignore.
Tensor cross_entropy_rows_backward(const Tensor& logits, const Tensor& targets, int32_t ignore, const Tensor& lse,
                                   double scale);
// The GPU's mixed-precision head in one pass over bf16 logits (fp32 inside): loss (fp32 [rows])
// as above, and with grad_scale != 0 the gradient grad_scale (softmax - onehot) written over the
// logits. GPU and bf16 only.
void cross_entropy_rows_bf16(Tensor logits, const Tensor& targets, int32_t ignore, Tensor loss,
                             double grad_scale);
// c (fp32) = op(a) op(b) + beta c with bf16 a and b: a sum over chunks kept in fp32 by the
// products themselves. GPU only.
void matmul_f32_out(const Tensor& a, const Tensor& b, Tensor c, bool ta, bool tb, double beta);

}  // namespace engine
