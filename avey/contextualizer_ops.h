// The contextualizer's products over whole contexts (avey/contextualizer.h has the math), as the
// fused block (avey/block.cpp) computes them: per context n, with Z0, Zn [C, h] its rows and
// W = tril(V) [C, C],
//   gram:   Cos = Zn Zn^T,  A = Cos (.) W                 [N, C, C]
//   mix:    Yc = A Z0       (and, with a gate, c = Yc (.) Z1 written into a window of the fuser's input)
//   outer:  dA = dYc Z0^T                                 [N, C, C]
//   mix_t:  A^T dYc                                       [N*C, h]
// The contexts' rows live in a Packing's layout (avey/packing.h): an input or output [rows, h]
// holds each packed row once. Which implementation runs is decided here, in one place: on the GPU
// in bf16, for the default dynamic contextualizer at sizes the triangle kernels tile
// (triangle_kernels_apply), the kernels of avey/kernels/cuda/tril_matmul.h read and write the
// packed rows through the row maps and compute only the lower triangles (what is above the
// diagonal of Cos, A and dA is then never written: whatever reads them reads only their lower
// triangles); elsewhere the rows are gathered into whole contexts for cuBLAS's or Eigen's batched
// products, which are told the half that is zero or not wanted (kernels::Triangle): the CPU
// skips it (and writes zeros above Cos's and dA's diagonal), cuBLAS computes full matrices.
#pragma once
#include "avey/config.h"
#include "avey/packing.h"
#include "engine/fused_ops.h"

namespace avey {

// The one named place that picks the GPU's triangle kernels for a config and a tensor's device
// and dtype.
bool triangle_kernels_apply(const engine::Tensor& like, const Config& cfg);

class ContextProducts {
 public:
  ContextProducts(const Config& cfg, const Packing& pack, const engine::Tensor& like);
  bool triangles() const { return triangles_; }

  struct Gram {
    engine::Tensor cos, a;
  };
  Gram gram(const engine::Tensor& zn, const engine::Tensor& w) const;
  // Yc [rows, h] (pack's rows); a is [N, C, C], or one [C, C] for every context (the static
  // ablation). With gate and out: c = Yc (.) gate written into out (a window [rows, h]).
  engine::Tensor mix(const engine::Tensor& a, const engine::Tensor& z0, const engine::Tensor& gate = {},
                     const engine::Columns& out = {}) const;
  // dYc [rows, h] (pack's rows; a row enters only through the context that computes it).
  engine::Tensor outer(const engine::Tensor& gyc, const engine::Tensor& z0) const;
  engine::Tensor mix_t(const engine::Tensor& a, const engine::Tensor& gyc) const;
  // x's rows as whole contexts [N, C, w] (a gather when packed).
  engine::Tensor contexts(const engine::Tensor& x) const;
  // A gradient at pack's rows [rows, w] as whole contexts, zero on the rows another context computes.
  engine::Tensor context_grads(const engine::Tensor& g) const;

 private:
  Packing pack_;  // shares its maps' storage
  int64_t N_, C_;
  bool triangles_;
};

// x [N, R, C] (.) w [R, C], the same w for every context n.
engine::Tensor mul_per_context(const engine::Tensor& x, const engine::Tensor& w);
// S = X + X^T per context, X = G (.) W on and below the diagonal (G's upper triangle not read).
engine::Tensor sym_weighted(const engine::Tensor& g, const engine::Tensor& w);
// tril(sum over contexts of a (.) b) [C, C] (only the lower triangles read).
engine::Tensor tril_product_column_sums(const engine::Tensor& a, const engine::Tensor& b);

}  // namespace avey
