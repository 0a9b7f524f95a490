// One Avey block (docs/model.md, "Neural processor"): h <- h + F(RMSNorm(h)), on the contexts'
// rows in the packed layout of avey/packing.h.
//
//   y  = RMSNorm(h)                           (eps 1e-10, gain g)
//   Z  = act(y U^T + b) = [Z0 | Z1 | Zh]      (enricher: U [m, d]; Z0, Z1 the tail's halves, h
//                                              columns each; Zh the bypassed head, mh columns)
//   Zn = Z0's rows / sqrt(|row|^2 + 1e-8)      (the cosine's normalisation)
//   A  = tril(V) (.) (Zn Zn^T)                 (per context, [C, C]; tril(V) alone when not dynamic)
//   c  = act_c(A Z0) (.) Z1                    (contextualizer; act_c none by default)
//   F  = [c | Zh] O^T + b_o                    (fuser: O [d, h + mh])
//
// There are two implementations, chosen in one place (block() below):
//  - the fused block (block.cpp): the whole body as ONE autograd node with the backward derived
//    here, built from the tensor ops of engine/fused_ops.h, avey/enricher_ops.h and
//    avey/contextualizer_ops.h, which pick CPU or GPU kernels themselves. Z's three parts go to
//    different consumers; as separate ops the split would copy Z in the forward, and in the
//    backward each part's gradient would become a zero-filled Z-sized buffer summed by autograd.
//    Here the bias, activation, split and Zn are one pass, [c | Zh] is one matrix (the enricher
//    writes Zh into its last mh columns, the contextualizer c into its first h), the residual and
//    b_o enter in the fuser product's epilogue, and the backward gathers the parts' gradients and
//    applies act' in one pass.
//  - the composed block (block_composed.cpp): the same function recorded op by op from engine
//    primitives (the tests' reference), and the implementation for what the fused block does not
//    support: LayerNorm, and attention in place of the contextualizer.
//
// Backward of the fused block, dF = dL/d(out):
//   dh (residual) = dF;   db_o = colsum dF;   dO = dF^T [c | Zh];   [dc | dZh] = dF O
//   dZ1 = dc (.) act_c(Yc),  dYc = act_c'(Yc) (.) dc (.) Z1        (Yc = A Z0)
//   dA  = dYc Z0^T;   dZ0 = A^T dYc  (the direct path)
//   dynamic:   dV = tril(sum over contexts of dA (.) Cos);  dCos = dA (.) tril(V)
//              dZn = dCos Zn + dCos^T Zn = (dCos + dCos^T) Zn   (one product: sym_weighted)
//              dZ0 += l2norm'(dZn): r (dZn - Zn rowsum(Zn (.) dZn)), r = 1 / sqrt(|Z0 row|^2 + eps)
//   static:    dV = tril(sum over contexts of dA)
//   dP = act'(P) (.) [dZ0 | dZ1 | dZh];   db = colsum dP;   dU = dP^T y;   dy = dP U
//   dh += rmsnorm'(dy) = rstd (g (.) dy - h rstd^2 mean(h g dy));   dg = colsum(dy (.) h rstd)
// Packed: a padding row's dZ0 is the sum over the contexts that read it (the row maps'
// transposes); dYc enters only through the context that computes the row.
#pragma once
#include "avey/config.h"
#include "avey/packing.h"
#include "engine/ops.h"

namespace avey {

// A block's parameters (reference names: blocks.{i}.rms_norm.weight, .ctxt.enricher.{weight,bias},
// .ctxt.contextualizer.spatial_proj, .ctxt.fuser.{weight,bias}); norm_bias only with LayerNorm,
// spatial undefined with attention.
struct BlockWeights {
  engine::Tensor norm_gain, norm_bias, enricher_w, enricher_b, spatial, fuser_w, fuser_b;
};

// Which rows of the block's output are wanted: every packed row, or only each context's current
// split (its last S rows, [N*S, d]: all the head reads after the last block).
enum class BlockRows { All, Current };

// The fused block supports the default architecture and every ablation but two: LayerNorm, and
// attention as the contextualizer.
bool fused_block_supports(const Config& cfg);

// The block, h [pack.rows, d] -> h + F(norm(h)) at the rows asked for: the fused block when it
// supports cfg and `composed` is false, else the composed one. The one place the choice is made.
engine::Tensor block(const engine::Tensor& h, const BlockWeights& w, const Config& cfg, const Packing& pack,
                     BlockRows rows, bool composed = false);

// The two implementations, for tests and benchmarks (use block()).
engine::Tensor fused_block(const engine::Tensor& h, const BlockWeights& w, const Config& cfg, const Packing& pack);
// The last block computed only at each context's current rows k (a quarter of the work at
// C = 4 S): every row still needs Z0 (the contextualizer mixes all of a context's rows into the
// current ones through Z0 only), the current rows alone need Z1, Zh, A_k = W_k (.) (Zn_k Zn^T)
// [S, C] (W_k: tril(V)'s last S rows) and the fuser:
//   backward: dA_k = dYc_k Z0^T;  dV = tril(sum dA_k (.) Cos_k) in rows C-S..C-1 only;
//             dZn = dCos_k^T Zn_k (every row) + dCos_k Zn (current rows), dCos_k = dA_k (.) W_k;
//             dZ0 = l2norm'(dZn) + A_k^T dYc_k;  dy = dP0 U0 + (dP_k Ur on the current rows);
//             dh = rmsnorm'(dy) + (dF on the current rows, zero elsewhere)
engine::Tensor fused_final_block(const engine::Tensor& h, const BlockWeights& w, const Config& cfg,
                                 const Packing& pack);
engine::Tensor composed_block(const engine::Tensor& h, const BlockWeights& w, const Config& cfg, const Packing& pack);

}  // namespace avey
