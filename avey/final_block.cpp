// The last block at each context's current rows only (avey/block.h: fused_final_block). The
// products between a context's S current rows and its C rows are batches of strided products
// (engine::matmul_into) over the contexts, whose rows are gathered whole ([N*C, h]).
#include "avey/activation.h"
#include "avey/block.h"
#include "avey/block_layout.h"
#include "avey/contextualizer.h"
#include "avey/contextualizer_ops.h"
#include "avey/enricher_ops.h"
#include "avey/norm.h"
#include "engine/fused_ops.h"

namespace avey {

using namespace engine;

Tensor fused_final_block(const Tensor& x, const BlockWeights& w, const Config& cfg, const Packing& pack) {
  const BlockSizes s = block_sizes("fused_final_block", x, w, cfg, pack);
  const int64_t C = s.C, S = s.S, r0 = C - S, h = s.half, N = s.N, kept = N * S, d = s.d;
  const Activation act = cfg.enricher_activation, act_c = cfg.contextualizer_activation;
  const bool dynamic = cfg.dynamic, keep_p = keeps_preactivation(act);
  // U's rows (and b's) for Z0, and for [Z1 | Zh]
  const Tensor U0 = w.enricher_w.view(0, {h, d}), Ur = w.enricher_w.view(h * d, {s.fuser_in, d});
  const Tensor b0 = w.enricher_b.view(0, {h}), br = w.enricher_b.view(h, {s.fuser_in});
  // A context n's matrix inside a [N*C, w] or [N*S, w] tensor: its rows, or its current rows.
  auto all_rows = [C](const Tensor& t) { return MatrixBatch{t, 0, C * t.size(-1)}; };
  auto current = [C, r0](const Tensor& t) { return MatrixBatch{t, r0 * t.size(-1), C * t.size(-1)}; };
  auto per_split = [S](const Tensor& t) { return MatrixBatch{t, 0, S * t.size(-1)}; };
  Tensor y, rstd, yk, P0, Pk, wt, wk, z0c, znc, cos, a, yc, cz, out;  // yk: y's current rows; z0c, znc: whole contexts
  EnrichedParts z, zk;  // Z0 (and Zn) at every row; Z1 at the current rows (zk.z0)
  {
    NoGrad no_grad;
    const RmsNormRows n = rmsnorm_rows(x, w.norm_gain, kRmsEps);
    y = n.y, rstd = n.rstd;
    yk = current_rows(y, pack);
    P0 = matmul(y, U0, false, true);
    Pk = matmul(yk, Ur, false, true);
    cz = Tensor::empty({kept, s.fuser_in}, x.dtype(), x.device());  // [c | Zh] at the current rows
    z = enrich_split(P0, b0, act, h, 0, Columns{}, keep_p, dynamic, kCosineEps);
    zk = enrich_split(Pk, br, act, h, 0, zh_columns(cz, s), keep_p, false, 0.0);
    if (!keep_p) P0 = Pk = Tensor();
    z0c = gather_contexts(z.z0, pack);
    if (dynamic) znc = gather_contexts(z.zn, pack);
    // ---- contextualizer at the current rows: A_k = W_k (.) (Zn_k Zn^T) [S, C], Yc_k = A_k Z0
    wt = tril(w.spatial);
    wk = wt.view(r0 * C, {S, C});
    if (dynamic) {
      cos = Tensor::empty({N, S, C}, x.dtype(), x.device());
      matmul_into(current(znc), all_rows(znc), per_split(cos), N, S, C, h, false, true, 0.0);
      a = mul_per_context(cos, wk);
    }
    yc = Tensor::empty({N, S, h}, x.dtype(), x.device());
    matmul_into(dynamic ? per_split(a) : MatrixBatch{wk}, all_rows(z0c), per_split(yc), N, S, h, C, false, false, 0.0);
    copy_into(reshape(mul(activate(act_c, yc), reshape(zk.z0, {N, S, h})), {kept, h}), c_columns(cz, s));
    // ---- fuser and residual at the current rows: out = h_k + b_o + cz O^T
    out = linear_residual(cz, w.fuser_w, w.fuser_b, current_rows(x, pack));
  }
  record(out, "avey.final_block", {x, w.norm_gain, w.enricher_w, w.enricher_b, w.spatial, w.fuser_w, w.fuser_b},
         [=](const Tensor& gf) -> std::vector<Tensor> {
           Tensor gx, gg, gU, gb, gV, gO, gbo;
           const bool norm_pass = x.requires_grad() || w.norm_gain.requires_grad();
           if (w.fuser_b.requires_grad() && !norm_pass) gbo = column_sums(gf);
           // ---- fuser: dO = dF^T cz, [dc | dZh] = dF O (current rows)
           if (w.fuser_w.requires_grad()) gO = matmul(gf, cz, true, false);
           const Tensor gcz = matmul(gf, w.fuser_w);
           const Tensor gc = reshape(copy_of(c_columns(gcz, s)), {N, S, h});
           // ---- contextualizer: dZ1 = dc (.) act_c(Yc), dYc = act_c'(Yc) (.) dc (.) Z1, dA_k = dYc Z0^T [S, C]
           const Tensor gz1 = reshape(mul(gc, activate(act_c, yc)), {kept, h});
           const Tensor gyc = activation_grad(act_c, yc, mul(gc, reshape(zk.z0, {N, S, h})));
           const Tensor ga = Tensor::empty({N, S, C}, gyc.dtype(), gyc.device());
           matmul_into(per_split(gyc), all_rows(z0c), per_split(ga), N, S, C, h, false, true, 0.0);
           Tensor gvk;  // dV's last S rows (the rows above get no gradient: only the current rows use them)
           Tensor gz0 = Tensor::empty({N * C, h}, gyc.dtype(), gyc.device());  // whole contexts
           if (dynamic) {
             if (w.spatial.requires_grad()) gvk = reshape(column_sums(reshape(mul(ga, cos), {N, S * C})), {S, C});
             // dZn = dCos_k^T Zn_k on every row, + dCos_k Zn on the current rows; dCos_k = dA_k (.) W_k
             const Tensor gcos = mul_per_context(ga, wk);
             const Tensor gzn = Tensor::empty({N * C, h}, gyc.dtype(), gyc.device());
             matmul_into(per_split(gcos), current(znc), all_rows(gzn), N, C, h, S, true, false, 0.0);
             matmul_into(per_split(gcos), all_rows(znc), current(gzn), N, S, h, C, false, false, 1.0);
             matmul_into(per_split(a), per_split(gyc), all_rows(gz0), N, C, h, S, true, false, 0.0);  // A_k^T dYc
             // dZ0 = l2norm'(dZn) + A_k^T dYc, a padding row's terms summed over the contexts that read it
             gz0 = l2norm_rows_backward(kernels::NormEps::Inside, z.z0, kCosineEps, gzn, gz0,
                                        pack.packed() ? &pack.to_full.transposed : nullptr, pack.pad_rows);
           } else {
             if (w.spatial.requires_grad()) gvk = reshape(column_sums(reshape(ga, {N, S * C})), {S, C});
             matmul_into(MatrixBatch{wk}, per_split(gyc), all_rows(gz0), N, C, h, S, true, false, 0.0);
             if (pack.packed()) gz0 = apply_map(gz0, pack.to_full.transposed);  // padding rows: summed
           }
           if (gvk.defined()) gV = concat_rows({Tensor::zeros({r0, C}, gvk.dtype(), gvk.device()), tril(gvk, r0)});
           // ---- enricher: dP0 = act'(.) dZ0 on every row, dPk = act'(.) [dZ1 | dZh] on the current rows
           Tensor gb0, gbr;
           if (w.enricher_b.requires_grad()) {
             gb = Tensor::empty({s.m}, gyc.dtype(), gyc.device());
             gb0 = gb.view(0, {h}), gbr = gb.view(h, {s.fuser_in});
           }
           const Tensor gp0 = enrich_split_backward(P0, z, Columns{}, act, gz0, Tensor(), Columns{}, gb.defined() ? &gb0 : nullptr);
           const Tensor gpk = enrich_split_backward(Pk, zk, zh_columns(cz, s), act, gz1, Tensor(), zh_columns(gcz, s),
                                                    gb.defined() ? &gbr : nullptr);
           if (w.enricher_w.requires_grad()) {  // dU = [dP0^T y ; dPk^T y_k]
             gU = Tensor::empty(w.enricher_w.shape(), gyc.dtype(), gyc.device());
             matmul_into({gp0}, {y}, {gU}, 1, h, d, s.rows, true, false, 0.0);
             matmul_into({gpk}, {yk}, {gU, h * d}, 1, s.fuser_in, d, kept, true, false, 0.0);
           }
           // ---- the norm: dy = dP0 U0 (+ dPk Ur on the current rows); dh = rmsnorm'(dy) + dF on the current rows
           const Tensor gres = scatter_current_rows(gf, pack);
           if (norm_pass) {
             const Tensor gy = matmul(gp0, U0);
             scatter_current_rows(matmul(gpk, Ur), pack, gy);
             const RmsNormGrads ng = rmsnorm_rows_backward(x, w.norm_gain, rstd, gy, gres, w.fuser_b.requires_grad());
             gx = ng.gx, gg = ng.gg;
             if (ng.gres_sum.defined()) gbo = ng.gres_sum;
           }
           return {x.requires_grad() ? gx : Tensor(), w.norm_gain.requires_grad() ? gg : Tensor(), gU, gb, gV, gO, gbo};
         });
  return out;
}

}  // namespace avey
