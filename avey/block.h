// One block's body with its residual, h + F(y), F(y) = fuser([ctx(Z0) (.) Z1 | Zh]),
// Z = act(y U^T + b), y = norm(h) computed by the caller, as ONE recorded op:
// the GPU's fast path (the model uses it on the GPU; the CPU keeps the separate fused layers,
// which compute the same function and are the reference the GPU tests compare against).
//
// Why one op: Z's three column parts go to different consumers. As separate ops, the column
// split copies Z in the forward, and in the backward each part's gradient becomes a zero-filled
// Z-sized buffer with the part copied in, summed by autograd: three fills, three copies and two
// Z-sized additions per block. Here the enricher's bias, activation and split, and the
// cosine's row normalisation of Z0, are one pass (kernels bias_act_split), and its backward
// gathers the parts' gradients and applies the activation's derivative in one pass
// (act_grad_concat).
//
//   forward:  P = y U^T;  P += b;  Z0|Z1|Zh = act(P)   (P kept only for gelu and silu: relu'
//                                                     and relu2' are functions of Z itself)
//             Z0^ = Z0's rows / sqrt(|row|^2 + eps)   (same pass, from Z0 as stored)
//             c = act_c(A Z0) (.) Z1, A = tril(V) (.) (Z0^ Z0^T)    (or tril(V) when not dynamic)
//             cz = [c | Zh]   (one [rows, h + mh] matrix: the enricher's pass writes Zh into its
//                             last mh columns, the contextualizer c into its first h)
//             out = h + b_o + cz O^T                 (one product, K = h + mh; the residual and
//                                                     the bias in its epilogue on the GPU)
//   backward: dh (residual) = dF;  dF -> dcz = [dc | dZh] = dF O, dO = dF^T cz, db_o = colsum dF;
//             dc -> dZ0, dZ1, dV (avey/contextualizer.cpp derives these);
//             dP = act'(P) (.) [dZ0 | dZ1 | dZh];  dy = dP U, dU = dP^T y, db = colsum dP
//             (dc, dZh and Zh read in place in dcz and cz: kernels with row strides).
#pragma once
#include "avey/config.h"
#include "avey/packing.h"
#include "engine/ops.h"

namespace avey {

// h [pack.rows, d] (the block input, contexts in pack's layout), norm_gain [d] -> h + F(rmsnorm(h))
// (eps kRmsEps), same layout. Not for the attention contextualizer or LayerNorm. The backward sums
// the residual's gradient into the norm's (one pass on the GPU).
// Packed (avey/packing.h): every step but the contextualizer runs on the packed rows; the
// contextualizer sees whole contexts: the GPU's triangle kernels read Z0, Zn and dYc through row
// maps and write Yc and c straight into the packed rows (elsewhere Z0, Zn are gathered into
// whole contexts and Yc gathered back); dYc is zero on the rows another context computes, and
// each padding row's dZ0 is summed over the contexts that read it (in the l2norm backward's
// pass on the GPU).
engine::Tensor block_body(const engine::Tensor& h, const engine::Tensor& norm_gain, const engine::Tensor& enricher_w, const engine::Tensor& enricher_b,
                          const engine::Tensor& spatial, const engine::Tensor& fuser_w, const engine::Tensor& fuser_b,
                          const Config& cfg, const Packing& pack);

// The last block, computed only for what the head reads: each context's current split, its last S
// rows. Returns those rows of h + F(rmsnorm(h)), [N*S, d], equal to block_body's rows
// C-S..C-1 of every context (tests/test_avey_block.cpp), at about a quarter of the cost (h in
// pack's layout; "every row" below means every packed row, Z0 gathered into whole contexts):
//   every row:        y = rmsnorm(h), Z0 = act(y U0^T + b0)     (the contextualizer mixes all of
//                     a context's rows into the current ones, through Z0 only)
//   current rows k:   [Z1 | Zh]_k = act(y_k Ur^T + br);  A_k = W_k (.) (Zn_k Zn^T)  [S, C], W_k the
//                     last S rows of tril(V) (or A_k = W_k when not dynamic);  c_k = act_c(A_k Z0) (.) Z1_k;
//                     out = h_k + b_o + [c_k | Zh_k] O^T
//   backward:         dA_k = dYc_k Z0^T;  dV = tril(sum_n dA_k (.) cos_k) in rows C-S..C-1 only;
//                     dZn = dCos_k^T Zn_k (every row) + dCos_k Zn (current rows), dCos_k = dA_k (.) W_k;
//                     dZ0 = l2norm'(dZn) + A_k^T dYc_k;  dY = dP0 U0 + (dP_k Ur on the current rows);
//                     dh = rmsnorm'(dY) + (dF on the current rows, zero elsewhere)
engine::Tensor final_block_body(const engine::Tensor& h, const engine::Tensor& norm_gain,
                                const engine::Tensor& enricher_w, const engine::Tensor& enricher_b,
                                const engine::Tensor& spatial, const engine::Tensor& fuser_w,
                                const engine::Tensor& fuser_b, const Config& cfg, const Packing& pack);

}  // namespace avey
