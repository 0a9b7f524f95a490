// The engine's primitive ops. Each works on CPU and CUDA tensors, checks its arguments (a
// clear error names the op and the shapes), and records its backward on the autograd tape
// when an input requires a gradient. Every one is gradient-checked in fp64 (tests/test_ops_*.cpp).
//
// Shapes: "[..., n]" means any leading dims, flattened to rows. Broadcasting in add/sub/mul/div
// is deliberately narrow (kernels::Broadcast): b has a's shape, or is a row [n] over a's last
// dim, or a column [..., 1] (one value per row of a), or a single element.
#pragma once
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"
#include "kernels/kernels.h"

namespace engine {

using kernels::NormEps;

// ---- matrix products ----
// a [M, K] or [B, M, K] (transposed: [K, M] / [B, K, M]); b [K, N] or [B, K, N] (transposed:
// [N, K] / [B, N, K]). A 3-D a with a 2-D b multiplies every batch by the same b (a weight);
// a 2-D a with 2-D b is the plain product.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
Tensor transpose(const Tensor& a);  // swaps the last two dims

// ---- element-wise ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double s);
Tensor add_scalar(const Tensor& a, double s);
Tensor relu(const Tensor& x);
Tensor relu2(const Tensor& x);  // relu(x)^2
Tensor gelu(const Tensor& x);   // x * Phi(x), exact erf
Tensor silu(const Tensor& x);   // x * sigmoid(x)
Tensor tanh(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor square(const Tensor& x);
Tensor unary(kernels::Unary f, const Tensor& x);  // any of the above by enum
Tensor tril(const Tensor& x, int64_t diagonal = 0);  // zero above the diagonal of the last two dims

// ---- rows ----
Tensor softmax(const Tensor& x);  // over the last dim
Tensor rmsnorm(const Tensor& x, const Tensor& gain, double eps);
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, double eps);
Tensor l2norm_rows(const Tensor& x, double eps, NormEps mode);
Tensor l1norm_rows(const Tensor& x, double eps);  // x / max(sum |x|, eps) per row (F.normalize, p = 1)

// ---- reductions ----
Tensor sum(const Tensor& x);        // all elements -> [1]
Tensor mean(const Tensor& x);       // all elements -> [1]
Tensor row_sums(const Tensor& x);     // [..., n] -> [..., 1]: one sum per row
Tensor row_means(const Tensor& x);    // [..., n] -> [..., 1]
Tensor row_max(const Tensor& x);      // [..., n] -> [..., 1]; gradient to the first arg-max
Tensor column_sums(const Tensor& x);  // [..., n] -> [n]: one sum per column (rows: all leading dims)

// ---- shapes, rows and columns ----
Tensor reshape(const Tensor& x, const Shape& shape);  // same data, new shape (a view)
Tensor slice_rows(const Tensor& x, int64_t begin, int64_t end);  // x[begin:end] along dim 0 (a view)
Tensor slice_cols(const Tensor& x, int64_t begin, int64_t end);  // x[..., begin:end] (a copy)
Tensor concat_cols(const std::vector<Tensor>& xs);               // along the last dim
Tensor concat_rows(const std::vector<Tensor>& xs);               // along dim 0
std::vector<Tensor> split_cols(const Tensor& x, const std::vector<int64_t>& widths);
Tensor gather_rows(const Tensor& table, const Tensor& index);  // table [R, n], index i32 [...] -> [..., n]
Tensor cast(const Tensor& x, DType dtype);                     // differentiable dtype change

// A fixed linear map of rows: out row r = the sum of in rows src[k] for k in [ptr[r], ptr[r+1]),
// added in that order (an empty range gives a zero row). It covers gathers, gathers that leave
// rows zero, and sums of rows that repeat bit for bit on every device (no atomics). Built once
// (the packed contexts, avey/packing.h), applied many times; copies share the index tensors.
struct RowMap {
  int64_t in_rows = 0, out_rows = 0;
  Tensor ptr, src;  // i32 [out_rows + 1] and [ptr[out_rows]], on the device the map is applied on
};
// The gather y[r] = x[source[r]] (source -1: a zero row) and its transpose, the sum that is its
// backward (in row i of the gather becomes out row i, the sum of the gathered rows that read it).
struct RowMaps {
  RowMap map, transposed;
};
RowMaps gather_map(const std::vector<int32_t>& source, int64_t in_rows, Device device);
// y = maps.map(x), x [in_rows, n] -> [out_rows, n]; recorded, its backward applies maps.transposed.
Tensor map_rows(const Tensor& x, const RowMaps& maps);
Tensor apply_map(const Tensor& x, const RowMap& map);  // y = map(x), never recorded

// ---- loss ----
// Mean over rows whose target != ignore_index of -log softmax(logits)[target].
// logits [..., V] (fp32 or fp64), targets i32 with logits' leading shape.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);

// ---- in place, never recorded (optimizer and gradient accumulation) ----
void add_(Tensor& y, const Tensor& x, double alpha = 1.0);  // y += alpha * x
// The parameters' gradients at the end of backward(), all at once: each target's grad (an fp32
// tensor, e.g. a parameter's slice of the flat gradient buffer) becomes
// (replace ? 0 : grad) + (parts[0] + parts[1] + ...), the parts fp32 or bf16 of grad's size, added
// in fp32 in their order. On the GPU one pass does them all (no kernel per parameter).
struct GradTarget {
  Tensor grad;
  std::vector<Tensor> parts;
  bool replace = false;
};
void accumulate_grads(const std::vector<GradTarget>& targets);

}  // namespace engine
