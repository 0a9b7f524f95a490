// The CUDA kernels: the same set, with the same signatures, as kernels/cpu/kernels.h (which says
// what each computes), so engine/dispatch.h can call kernels::cuda::name<T>(args) for a tensor
// on the GPU. Pointers are
// device pointers (gloss in cross_entropy_backward too). T is float or bf16; for bf16 the
// arithmetic runs in fp32 and only storage is bf16 (the optimizer's kernels: float only). fill and convert are also instantiated for
// double and int32_t (engine/tensor.cpp uses them for every dtype).
//
// All kernels run on one stream (kernels/cuda/memory.h) and are asynchronous: errors from a
// launch are reported at once, errors found while running (an index out of range) at the next
// synchronize() or copy to the host.
#pragma once
#include <cstdint>

#include "kernels/cpu/kernels.h"  // Broadcast, Binary, Unary, NormEps
#include "kernels/cuda/memory.h"

namespace kernels::cuda {

// ---- memory (allocation and copies: kernels/cuda/memory.h) ----
template <class T> void fill(int64_t n, T* y, double value);
template <class S, class D> void convert(int64_t n, const S* x, D* y);
template <class T> void axpy(int64_t n, double alpha, const T* x, T* y);
template <class S, class D> void accumulate(int64_t n, const S* x, D* y);  // (bf16, float), (float, float)
void accumulate_grads(int count, const GradSlot* slots);  // slots in host memory, pointers device

// ---- matrix products ----
template <class T>
void matmul(const T* A, const T* B, T* C, int64_t batch, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
            double alpha, double beta, int64_t strideA, int64_t strideB, int64_t strideC);
// One product whose operands and output may be column slices of wider row-major matrices: lda,
// ldb, ldc are the buffers' row lengths (C = alpha op(A) op(B) + beta C, shapes as above).
template <class T>
void matmul_ld(const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, int64_t M, int64_t N, int64_t K,
               bool ta, bool tb, double alpha, double beta);
// D = op(A) op(B) + R + bias: the residual and the bias as cuBLASLt's epilogue of the product.
template <class T>
void matmul_residual_bias(const T* A, int64_t lda, const T* B, int64_t ldb, const T* R, const T* bias, T* D, int64_t M,
                          int64_t N, int64_t K, bool ta, bool tb);
template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y);
// S = X + X^T, X = G (.) W per [C, C] matrix G of the batch, W [C, C] lower triangular (only G's
// lower triangle is read; CUDA only: avey/block.cpp)
template <class T> void sym_weighted(int64_t batch, int64_t C, const T* G, const T* W, T* S);
// bf16 operands, fp32 result: C = op(A) op(B) + beta C, one product (CUDA only: the tied head
// sums its embedding gradient over chunks of rows this way, in fp32 and with no extra pass).
void matmul_bf16_f32(const bf16* A, const bf16* B, float* C, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                     double beta);
// The contextualizer's triangular products (CUDA only, bf16, fp32 accumulation; cuda/tril_matmul.cu):
// only the lower 128 x 128 tiles of a [C, C] result, or only the triangle's K range. C and N
// multiples of 128, K a positive multiple of 64, pointers 16-byte aligned. Their fast path
// (wgmma) needs an sm_90a build (CMAKE_CUDA_ARCHITECTURES=90a); sm_80 to sm_90 get a slower
// mma.sync one. tril_matmul_available(): the running code has one of them (built for sm_80 or later).
bool tril_matmul_available();
// The packed contexts' row map (avey/packing.h) as the triangle kernels apply it to an operand's
// rows, or a result's: context b's row i is packed row i when i < pad[b] (a shared padding row)
// and offset[b] + i - pad[b] otherwise. With owner >= 0 the padding rows map only in context
// `owner` and are -1 elsewhere: read as zero rows, and not written. Default: no map (row b C + i).
struct PackedRows {
  const int32_t* pad = nullptr;  // [batch]
  const int32_t* offset = nullptr;
  int owner = -1;
};
// cos = A A^T, a = cos (.) W (W [C, C] lower triangular, shared), tiles j <= i only; A [batch, C, K]
void tril_gram(int64_t batch, int64_t C, int64_t K, const bf16* A, PackedRows a_rows, const bf16* W, bf16* cos,
               bf16* a);
// G = X Y^T, tiles j <= i only; X, Y [batch, C, K]
void tril_nt(int64_t batch, int64_t C, int64_t K, const bf16* X, PackedRows x_rows, const bf16* Y,
             PackedRows y_rows, bf16* G);
// Y = L B (L [batch, C, C] lower triangular, B [batch, C, N]); P = Y (.) M when M, P are given,
// P's rows (batch entries stacked) ldp elements apart (a multiple of 8, >= N: P may be the first
// N columns of a wider matrix); out_rows maps the rows of Y, M and P
void tril_lower_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y,
                   const bf16* M, bf16* P, int64_t ldp, PackedRows out_rows);
// Y = L^T B (L lower triangular; Y, B [batch, C, N])
void tril_upper_t_mm(int64_t batch, int64_t C, int64_t N, const bf16* L, const bf16* B, PackedRows b_rows, bf16* Y);

// ---- element-wise ----
template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y);
// ya = g (.) a, yb = g (.) b, [rows, cols] each; g's rows are ldg elements apart (a column window
// of a wider matrix), the others contiguous (CUDA only: avey/block.cpp's backward)
template <class T>
void mul_pair(int64_t rows, int64_t cols, const T* g, int64_t ldg, const T* a, const T* b, T* ya, T* yb);
// out[i, j] = sum_n a[n, i, j] b[n, i, j] for j <= i, else 0 (a, b [batch, C, C]; CUDA only)
template <class T> void tril_product_column_sums(int64_t batch, int64_t C, const T* a, const T* b, T* out);
template <class T> void reduce_to(Broadcast bc, int64_t rows, int64_t cols, const T* g, T* gb);
template <class T> void scale(int64_t n, double s, const T* x, T* y);
template <class T> void add_scalar(int64_t n, double s, const T* x, T* y);
template <class T> void unary(Unary f, int64_t n, const T* x, T* y);
template <class T> void unary_backward(Unary f, int64_t n, const T* x, const T* gy, T* gx);
template <class T> void tril(int64_t batch, int64_t rows, int64_t cols, int64_t diagonal, const T* x, T* y);

// ---- rows ----
template <class T> void softmax_rows(int64_t rows, int64_t cols, const T* x, T* y);
template <class T> void softmax_rows_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx);
template <class T> void rmsnorm(int64_t rows, int64_t cols, const T* x, const T* g, double eps, T* y, T* rstd);
template <class T>
void rmsnorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* rstd, const T* gy, T* gx, T* gg);
// gx = the rmsnorm backward + gres (gres nullable): a residual's gradient summed in the same pass
// (CUDA only: avey/block.cpp, whose block input feeds both the norm and the residual); gres_sum
// (nullable): gres's column sums, the gradient of a bias added after the residual.
template <class T>
void rmsnorm_backward_residual(int64_t rows, int64_t cols, const T* x, const T* g, const T* rstd, const T* gy,
                               const T* gres, T* gx, T* gg, T* gres_sum);
template <class T>
void layernorm(int64_t rows, int64_t cols, const T* x, const T* g, const T* b, double eps, T* y, T* mean, T* rstd);
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                        const T* gy, T* gx, T* gg, T* gb);
template <class T> void l2norm_rows(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom);
template <class T>
void l2norm_rows_backward(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, const T* denom,
                          const T* gy, T* gx);
// The same where row r's gradient is the sum of gy's rows src[ptr[r]..ptr[r+1]) (a row map,
// engine::RowMap), plus the sum of extra's same rows (extra may be null) added to gx; rows whole
// 16-byte vectors (the packed contexts' dZ0: a padding row's gradient summed over its contexts).
// The first summed_rows rows may sum many rows (the padding rows): they take a block each.
template <class T>
void l2norm_rows_backward_gathered(NormEps mode, int64_t rows, int64_t summed_rows, int64_t cols, const T* x,
                                   double eps, const int32_t* ptr, const int32_t* src, const T* gy, const T* extra,
                                   T* gx);

// ---- reductions ----
template <class T> void sum_all(int64_t n, const T* x, T* y);
template <class T> void sum_cols(int64_t rows, int64_t cols, const T* x, T* y);
template <class T> void max_cols(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax);

// ---- moving rows and columns ----
template <class T>
void copy_cols(int64_t rows, int64_t width, const T* src, int64_t src_cols, int64_t src_off, T* dst,
               int64_t dst_cols, int64_t dst_off, bool accumulate);
template <class T>
void gather_rows(int64_t n_idx, int64_t cols, const T* table, int64_t table_rows, const int32_t* idx, T* y);
template <class T>
void scatter_add_rows(int64_t n_idx, int64_t cols, const T* g, const int32_t* idx, T* gtable, int64_t table_rows);
template <class T> void scatter_cols(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx);
template <class T>
void map_rows(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x, T* y);

// ---- the Avey enricher's element-wise end (fused) ----
template <class T>
void bias_act_split(int64_t rows, int64_t cols, T* p, const T* bias, bool has_act, Unary f, int64_t w0, int64_t w1,
                    T* z0, T* z1, T* z2, int64_t ld2, bool keep_p, T* zn, T* denom, double eps);
template <class T>
void act_grad_concat(int64_t rows, int64_t cols, const T* p, const T* z0, const T* z1, const T* z2, int64_t ld2,
                     bool has_act, Unary f, int64_t w0, int64_t w1, const T* g0, const T* g1, const T* g2, T* gp,
                     T* gbias);

// ---- top-k context selection (one thread per context; weights and gradients in double) ----
template <class T>
void gathered_row_dots(int64_t n, int64_t cols, const T* g, const T* table, const int32_t* idx, double* out);
template <class T>
void maxsim_backward(int64_t batch, int64_t rs, int64_t js, int64_t S, int64_t d, const T* Q, const T* C,
                     const int32_t* argmax, const T* g, T* dQ, T* dC);
template <class T>
void select_contexts(int64_t batch, int64_t queries, int64_t cols, int64_t k, int64_t table, const int32_t* query,
                     const T* scores, bool ranked, bool weighted, bool norm_max, double eps, int32_t* split,
                     double* weight, int32_t* score_index, int32_t* norm_index);
template <class T>
void selection_matrix(int64_t batch, int64_t slots, int64_t table, const int32_t* split, const double* weight, T* P);
template <class T>
void selection_score_grad(int64_t contexts, int64_t slots, int64_t cols, const T* scores, const int32_t* score_index,
                          const int32_t* norm_index, const double* gw, double eps, T* gscores);

// ---- loss ----
template <class T>
void cross_entropy(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                   T* lse);
template <class T>
void cross_entropy_backward(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                            const T* lse, const T* gloss, double scale, T* glogits);

// Cross-entropy of bf16 logits in one kernel (CUDA only; fp32 inside): loss [rows] in fp32, and
// when grad_scale != 0 the gradient grad_scale (softmax - onehot) written over the logits.
void cross_entropy_bf16(int64_t rows, int64_t vocab, bf16* logits, const int32_t* target, int32_t ignore, float* loss,
                        double grad_scale);

// ---- optimizer (instantiated for float only) ----
template <class T>
void adamw(int64_t n, T* p, const T* g, T* m, T* v, const uint8_t* decay, bf16* p_bf16, double lr, double b1,
           double b2, double eps, double wd, double bias1, double bias2, const double* grad_scale);
template <class T> double sum_squares(int64_t n, const T* x);
template <class T> void clip_norm(int64_t n, const T* x, double max_norm, double* out);
template <class T>
void segment_sum_squares(int64_t nseg, const int64_t* offset, const int64_t* count, const T* x, double* out);

}  // namespace kernels::cuda

