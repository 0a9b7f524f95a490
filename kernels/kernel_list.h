// The engine's kernel list: included by kernels/kernels.h into namespace kernels::cpu and into
// namespace kernels::cuda (hence no include guard and no namespace here). Each backend defines
// every entry and instantiates it with kernels/instantiate.h; what each one computes is said
// here, once. Types (Broadcast, Gemm, ...) are those of kernels/kernels.h.

// ---- memory ----
template <class T> void fill(int64_t n, T* y, double value);
template <class S, class D> void convert(int64_t n, const S* x, D* y);
template <class T> void axpy(int64_t n, double alpha, const T* x, T* y);  // y += alpha * x
// y += x with x's elements converted to D first (mixed precision: a bf16 gradient added into an
// fp32 gradient buffer). Instantiated for (bf16, float), (float, float), and (double, double) on the CPU.
template <class S, class D> void accumulate(int64_t n, const S* x, D* y);
// Every slot's gradient (GradSlot); the GPU does all of them in one pass (slots in host memory).
void accumulate_grads(int count, const GradSlot* slots);

// ---- matrix products ----
template <class T> void matmul(const Gemm<T>& g);
template <class T> void linear_residual(const LinearResidual<T>& a);
// y[b] = x[b]^T for a batch of rows x cols matrices.
template <class T> void transpose(int64_t batch, int64_t rows, int64_t cols, const T* x, T* y);

// ---- element-wise ----
template <class T>
void binary(Binary op, Broadcast bc, int64_t rows, int64_t cols, const T* a, const T* b, T* y);
// ya = g (.) a, yb = g (.) b, [rows, cols] each; g's rows are ldg elements apart (a column window
// of a wider matrix), the others contiguous: the backward of a product of two factors.
template <class T>
void mul_pair(int64_t rows, int64_t cols, const T* g, int64_t ldg, const T* a, const T* b, T* ya, T* yb);
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
template <class T> void rmsnorm_backward(const RmsNormBackward<T>& a);
// y = (x - mean) * rstd * g + b; mean and rstd (one per row) saved.
template <class T>
void layernorm(int64_t rows, int64_t cols, const T* x, const T* g, const T* b, double eps, T* y, T* mean, T* rstd);
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* g, const T* mean, const T* rstd,
                        const T* gy, T* gx, T* gg, T* gb);
// y = x / norm(x) per row (see NormEps); the row's denominator is saved in `denom`.
template <class T> void l2norm_rows(NormEps mode, int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom);
template <class T> void l2norm_rows_backward(const L2NormBackward<T>& a);
// y = x / max(sum |x|, eps) per row (F.normalize with p = 1), the denominators saved. Its
// backward recomputes the sum s from x: gx = gy / d - sign(x) [s > eps] (gy . x) / d^2.
template <class T> void l1norm_rows(int64_t rows, int64_t cols, const T* x, double eps, T* y, T* denom);
template <class T> void l1norm_rows_backward(int64_t rows, int64_t cols, const T* x, double eps, const T* gy, T* gx);

// ---- reductions ----
template <class T> void sum_all(int64_t n, const T* x, T* y);                      // y[0] = sum x
template <class T> void row_sums(int64_t rows, int64_t cols, const T* x, T* y);   // y[r] = sum_c x[r, c]
// y[r] = max_c x[r, c] and argmax[r] its column: the first maximum wins, NaN is never the maximum.
template <class T> void row_max(int64_t rows, int64_t cols, const T* x, T* y, int32_t* argmax);

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
// gx[r, idx[r]] += gy[r] (the backward of row_max)
template <class T> void scatter_cols(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx);
// y[r, :] = sum of x[src[k], :] for k in [ptr[r], ptr[r+1]), in that order (zero for an empty
// range): a fixed linear map of rows (engine::RowMap), deterministic where rows are summed.
template <class T>
void map_rows(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x, T* y);

// ---- loss ----
// Per row: loss[r] = logsumexp(logits[r]) - logits[r, target[r]], or 0 when target == ignore;
// lse[r] saved. The engine averages over the counted rows.
template <class T>
void cross_entropy(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                   T* lse);
// glogits[r] = gloss[0] * scale * (softmax(logits[r]) - onehot(target[r])), zero rows for ignored
// targets. gloss points to one element (dL/d(mean loss)) on the kernel's device, scale = 1 /
// (number of counted rows).
template <class T>
void cross_entropy_backward(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                            const T* lse, const T* gloss, double scale, T* glogits);

// ---- optimizer (the GPU instantiates these for float only) ----
template <class T> void adamw(const AdamWArgs<T>& a);
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
