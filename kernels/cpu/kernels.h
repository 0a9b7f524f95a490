// The CPU kernels: plain loops and Eigen over raw row-major arrays, parallel with OpenMP.
// Each is a template over the element type T, instantiated for float and double (double for
// the gradient checks). kernels/cuda/kernels.h declares the same set with the same signatures
// (instantiated for float and bf16), so engine/dispatch.h can pick either by device.
//
// Conventions: n = number of elements; rows x cols = a matrix seen as [.., cols] flattened to
// rows; "_backward" kernels take the forward's inputs/outputs and dL/dy, and write dL/dx.
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

namespace cpu {

// ---- memory ----
template <class T> void fill(int64_t n, T* y, double value);
template <class S, class D> void convert(int64_t n, const S* x, D* y);
template <class T> void axpy(int64_t n, double alpha, const T* x, T* y);  // y += alpha * x
// y += x with x's elements converted to D first (mixed precision: a bf16 gradient added into an
// fp32 gradient buffer). Instantiated for (bf16, float), (float, float) and (double, double).
template <class S, class D> void accumulate(int64_t n, const S* x, D* y);
// Every slot's gradient (GradSlot above); the GPU does all of them in one pass.
void accumulate_grads(int count, const GradSlot* slots);

// ---- matrix products ----
// For b in [0, batch): C_b = alpha * op(A_b) op(B_b) + beta * C_b, op = transpose when ta/tb.
// op(A_b) is M x K, op(B_b) is K x N, C_b is M x N; X_b starts at X + b * strideX (a stride of
// 0 shares one matrix across the batch). Accumulates in T (fp32 or fp64).
template <class T>
void matmul(const T* A, const T* B, T* C, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
            double alpha, double beta, int64_t strideA, int64_t strideB, int64_t strideC);
// One product whose operands and output may be column slices of wider row-major matrices: lda,
// ldb, ldc are the buffers' row lengths (C = alpha op(A) op(B) + beta C, shapes as above).
template <class T>
void matmul_ld(const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, int64_t M, int64_t N, int64_t K,
               bool ta, bool tb, double alpha, double beta);
// D = op(A) op(B) + R + bias (bias [N] added to every row; R, D [M, N] contiguous; A, B with row
// lengths lda, ldb): a residual and a bias entering with a product (the GPU does them in the
// product's epilogue: avey/block.cpp's fuser).
template <class T>
void matmul_residual_bias(const T* A, int64_t lda, const T* B, int64_t ldb, const T* R, const T* bias, T* D, int64_t M,
                          int64_t N, int64_t K, bool ta, bool tb);
// y[b] = x[b]^T for a batch of rows x cols matrices.
template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y);

// ---- element-wise ----
template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y);
// Gradient of a broadcast operand: reduce g (rows x cols) to b's shape (sum over what was broadcast).
template <class T> void reduce_to(Broadcast bc, int64_t rows, int64_t cols, const T* g, T* gb);
template <class T> void scale(int64_t n, double s, const T* x, T* y);        // y = s * x
template <class T> void add_scalar(int64_t n, double s, const T* x, T* y);   // y = x + s
template <class T> void unary(Unary f, int64_t n, const T* x, T* y);
template <class T> void unary_backward(Unary f, int64_t n, const T* x, const T* gy, T* gx);  // gx = f'(x) gy
// Lower-triangular mask on each rows x cols matrix: keep (r, c) with c <= r + diagonal, zero the rest.
template <class T> void tril(int64_t batch, int64_t rows, int64_t cols, int64_t diagonal, const T* x, T* y);

// ---- rows ----
template <class T> void softmax_rows(int64_t rows, int64_t cols, const T* x, T* y);
template <class T> void softmax_rows_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx);
// y = x * rstd * g, rstd = 1 / sqrt(mean(x^2) + eps); rstd (one per row) is saved for backward.
template <class T> void rmsnorm(int64_t rows, int64_t cols, const T* x, const T* g, double eps, T* y, T* rstd);
// gx written; gg (cols) written (summed over rows).
template <class T>
void rmsnorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* rstd, const T* gy, T* gx, T* gg);
// y = (x - mean) * rstd * g + b; mean and rstd (one per row) saved.
template <class T>
void layernorm(int64_t rows, int64_t cols, const T* x, const T* g, const T* b, double eps, T* y, T* mean, T* rstd);
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                        const T* gy, T* gx, T* gg, T* gb);
// y = x / norm(x) per row (see NormEps); the row's denominator is saved in `denom`.
template <class T> void l2norm_rows(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom);
template <class T>
void l2norm_rows_backward(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, const T* denom,
                          const T* gy, T* gx);

// ---- reductions ----
template <class T> void sum_all(int64_t n, const T* x, T* y);                         // y[0] = sum x
template <class T> void sum_cols(int64_t rows, int64_t cols, const T* x, T* y);       // y[r] = sum_c x[r, c]
template <class T> void max_cols(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax);  // first max wins

// ---- moving rows and columns ----
// dst[r, dst_off + c] = src[r, src_off + c] for c < width (accumulate: +=).
template <class T>
void copy_cols(int64_t rows, int64_t width, const T* src, int64_t src_cols, int64_t src_off, T* dst,
               int64_t dst_cols, int64_t dst_off, bool accumulate);
// y[i, :] = table[idx[i], :]; indices are checked against table_rows.
template <class T>
void gather_rows(int64_t n_idx, int64_t cols, const T* table, int64_t table_rows, const int32_t* idx, T* y);
// gtable[idx[i], :] += g[i, :]; gtable has table_rows rows (the GPU sorts only the index bits
// they need, and reports an index outside them).
template <class T>
void scatter_add_rows(int64_t n_idx, int64_t cols, const T* g, const int32_t* idx, T* gtable, int64_t table_rows);
// gx[r, idx[r]] += gy[r] (the backward of max_cols)
template <class T> void scatter_cols(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx);
// y[r, :] = sum of x[src[k], :] for k in [ptr[r], ptr[r+1]), in that order (zero for an empty
// range): a fixed linear map of rows (engine::RowMap), deterministic where rows are summed.
template <class T>
void map_rows(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x, T* y);

// ---- the Avey enricher's element-wise end (fused) ----
// p (rows x cols, a matrix product's output) += bias (one per column). Then z = f(p) (identity
// when !has_act) is written split by columns into three matrices: z0 (rows x w0), z1 (rows x
// w1), z2 (rows x (cols - w0 - w1), rows ld2 elements apart: z2 may be a column window of a wider
// matrix; may be null when its width is 0). With keep_p, p keeps the
// pre-activation for the backward; without, p may or may not be overwritten (the GPU skips the
// write: the backward then takes f' from z, see below). With zn (may be null), also z0's rows
// normalised for the contextualizer's cosine, zn = z0 / sqrt(rowsum(z0^2) + eps) (rows x w0),
// and denom [rows] their denominators: exactly l2norm_rows(NormEps::Inside, rows, w0, z0, eps,
// zn, denom) on z0 as stored (the GPU without reading z0 back).
template <class T>
void bias_act_split(int64_t rows, int64_t cols, T* p, const T* bias, bool has_act, Unary f, int64_t w0, int64_t w1,
                    T* z0, T* z1, T* z2, int64_t ld2, bool keep_p, T* zn, T* denom, double eps);
// Its backward: gp = f'(p) * [g0 | g1 | g2] (rows x cols; g2's rows, like z2's, ld2 elements
// apart). p may be null when f' is a function of the output z = [z0 | z1 | z2] (laid out like
// the g parts): relu' = [z > 0], relu2' = 2 sqrt(z), and when !has_act. gbias (may be null): the
// column sums of gp, the enricher bias's gradient.
template <class T>
void act_grad_concat(int64_t rows, int64_t cols, const T* p, const T* z0, const T* z1, const T* z2, int64_t ld2,
                     bool has_act, Unary f, int64_t w0, int64_t w1, const T* g0, const T* g1, const T* g2, T* gp,
                     T* gbias);

// ---- the ranker's MaxSim backward ----
// best[b, t, j] = max over u < S of (Q_b C_b^T)[t, j S + u], taken at u = argmax[b, t, j] (Q_b
// [rs, d], C_b [js, d], js = J S): its gradient touches one similarity per (t, j), so
//   dQ[b, t]         = sum over j (in order) of g[b, t, j] C_b[j S + argmax[b, t, j]]
//   dC[b, j S + u]   = sum over t with argmax[b, t, j] = u (in order of t) of g[b, t, j] Q_b[t]
// (written, not added to) instead of two dense products with a matrix that is zero but there.
template <class T>
void maxsim_backward(int64_t batch, int64_t rs, int64_t js, int64_t S, int64_t d, const T* Q, const T* C,
                     const int32_t* argmax, const T* g, T* dQ, T* dC);

// out[s] = sum over c of g[s, c] table[idx[s], c], in T (each row of g against the table row it
// was gathered from: the ranker's weight gradient dw_s = <dH_s, X_{j_s}>), returned in double.
template <class T>
void gathered_row_dots(int64_t n, int64_t cols, const T* g, const T* table, const int32_t* idx, double* out);

// ---- top-k context selection (a ranker's plan; the formulas: kernels/selection_math.h) ----
// batch x queries contexts, context c = b * queries + r built for row q = query[r] of sequence b
// (rows b * table .. b * table + table - 1 of a table of rows), with K = k + 1 slots each
// (outputs [batch * queries * K], slot s of context c at c * K + s). The selected rows: with
// `ranked`, the min(max(0, min(q, cols)), k) rows j < min(q, cols) with the highest
// scores[c * cols + j] (scores [batch, queries, cols]; equal scores: the lower j wins); without,
// j in [max(0, q - k), q) (scores unread, may be null). Slots: the k - selected empty ones first
// (split 0, weight 0), then the selected by ascending j (split b * table + j), then q itself
// (split b * table + q, weight 1). weight in double: with `weighted`, w_j = s_j / (s_n + eps),
// s_n the largest selected score (norm_max; the earliest on ties) or the first selected one's,
// and score_index / norm_index the flat indices of s_j / s_n in scores; otherwise w = 1 and the
// indices -1. query: [queries] on the kernel's device, or null for query[r] = r.
template <class T>
void select_contexts(int64_t batch, int64_t queries, int64_t cols, int64_t k, int64_t table, const int32_t* query,
                     const T* scores, bool ranked, bool weighted, bool norm_max, double eps, int32_t* split,
                     double* weight, int32_t* score_index, int32_t* norm_index);
// P [batch, slots, table] (slots per sequence): P[b, s, split[i] - b * table] = weight[i] for slot
// i = b * slots + s where weight[i] != 0, 0 elsewhere; the contexts' gradient goes back to the
// rows as P^T dH.
template <class T>
void selection_matrix(int64_t batch, int64_t slots, int64_t table, const int32_t* split, const double* weight, T* P);
// The scores' gradient [contexts, cols] from the weights' (gw [contexts * slots], double), the
// plan of select_contexts (weighted): context c's row zeroed, then for each slot t in order with
// score_index[t] >= 0, n_t = scores[norm_index[t]] + eps, w_t = scores[score_index[t]] / n_t:
//   gscores[score_index[t]] += gw_t / n_t,  gscores[norm_index[t]] -= gw_t w_t / n_t
// summed in double, rounded to T once.
template <class T>
void selection_score_grad(int64_t contexts, int64_t slots, int64_t cols, const T* scores, const int32_t* score_index,
                          const int32_t* norm_index, const double* gw, double eps, T* gscores);

// ---- loss ----
// Per row: loss[r] = logsumexp(logits[r]) - logits[r, target[r]], or 0 when target == ignore;
// lse[r] saved. Returns nothing; the engine averages over the counted rows.
template <class T>
void cross_entropy(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                   T* lse);
// glogits[r] = gloss[0] * scale * (softmax(logits[r]) - onehot(target[r])), zero rows for ignored
// targets. gloss points to one element (dL/d(mean loss)), scale = 1 / (number of counted rows).
template <class T>
void cross_entropy_backward(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                            const T* lse, const T* gloss, double scale, T* glogits);


// ---- optimizer ----
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
void adamw(int64_t n, T* p, const T* g, T* m, T* v, const uint8_t* decay, bf16* p_bf16, double lr, double b1,
           double b2, double eps, double wd, double bias1, double bias2, const double* grad_scale);
// Sum of x[i]^2 accumulated in fp64, in a fixed order (independent of the thread count), returned
// to the host. segment_sum_squares does the same for nseg ranges [offset[s], offset[s] + count[s])
// of x in one pass; offset, count and out (nseg each) are host memory.
template <class T> double sum_squares(int64_t n, const T* x);
// The clip of the global gradient norm, computed where x lives (no copy to the host):
// out[0] = sqrt(sum_squares(n, x)) (the same bits as sum_squares), out[1] =
// clip_coefficient(out[0], max_norm) (kernels/elementwise_math.h). out: 2 doubles on x's device.
template <class T> void clip_norm(int64_t n, const T* x, double max_norm, double* out);
template <class T>
void segment_sum_squares(int64_t nseg, const int64_t* offset, const int64_t* count, const T* x, double* out);

}  // namespace cpu
}  // namespace kernels
