// The fused block (avey/block.h has the math and its derivation) and the choice between it and
// the composed one.
#include "avey/block.h"

#include "avey/activation.h"
#include "avey/block_layout.h"
#include "avey/contextualizer.h"
#include "avey/contextualizer_ops.h"
#include "avey/enricher_ops.h"
#include "avey/norm.h"
#include "engine/fused_ops.h"

namespace avey {

using namespace engine;

bool fused_block_supports(const Config& cfg) { return !cfg.use_layernorm() && !cfg.use_attention(); }

Tensor block(const Tensor& h, const BlockWeights& w, const Config& cfg, const Packing& pack, BlockRows rows,
             bool composed) {
  if (!composed && fused_block_supports(cfg))
    return rows == BlockRows::All ? fused_block(h, w, cfg, pack) : fused_final_block(h, w, cfg, pack);
  const Tensor out = composed_block(h, w, cfg, pack);
  return rows == BlockRows::All ? out : current_split(out, pack);
}

Tensor fused_block(const Tensor& x, const BlockWeights& w, const Config& cfg, const Packing& pack) {
  const BlockSizes s = block_sizes("fused_block", x, w, cfg, pack);
  const Activation act = cfg.enricher_activation, act_c = cfg.contextualizer_activation;
  const bool dynamic = cfg.dynamic, keep_p = keeps_preactivation(act);
  const ContextProducts ctx(cfg, pack, x);
  Tensor y, rstd, P, wt, yc, cz, out;  // wt = tril(V); cz = [c | Zh], the fuser's input
  EnrichedParts z;
  ContextProducts::Gram gram;  // Cos and A (dynamic)
  {
    NoGrad no_grad;
    const RmsNormRows n = rmsnorm_rows(x, w.norm_gain, kRmsEps);
    y = n.y, rstd = n.rstd;
    P = matmul(y, w.enricher_w, false, true);  // [rows, m]
    cz = Tensor::empty({s.rows, s.fuser_in}, x.dtype(), x.device());
    // Z0, Z1, Zh (straight into cz) and Zn in one pass
    z = enrich_split(P, w.enricher_b, act, s.half, s.half, zh_columns(cz, s), keep_p, dynamic, kCosineEps);
    if (!keep_p) P = Tensor();  // act' comes from the parts in the backward
    wt = tril(w.spatial);
    if (dynamic) gram = ctx.gram(z.zn, wt);
    const Tensor& a = dynamic ? gram.a : wt;
    if (act_c == Activation::None) {
      yc = ctx.mix(a, z.z0, z.z1, c_columns(cz, s));  // Yc = A Z0, and c = Yc (.) Z1 into cz
    } else {
      yc = ctx.mix(a, z.z0);
      copy_into(mul(activate(act_c, yc), z.z1), c_columns(cz, s));
    }
    out = linear_residual(cz, w.fuser_w, w.fuser_b, x);  // x + b_o + cz O^T
  }
  record(out, "avey.block", {x, w.norm_gain, w.enricher_w, w.enricher_b, w.spatial, w.fuser_w, w.fuser_b},
         [=](const Tensor& gf) -> std::vector<Tensor> {
           Tensor gx, gg, gU, gb, gV, gO, gbo;
           const bool norm_pass = x.requires_grad() || w.norm_gain.requires_grad();
           // ---- fuser: dO = dF^T cz, [dc | dZh] = dF O; db_o = colsum dF (in the norm's pass when there is one)
           if (w.fuser_b.requires_grad() && !norm_pass) gbo = column_sums(gf);
           if (w.fuser_w.requires_grad()) gO = matmul(gf, cz, true, false);
           Tensor gcz = matmul(gf, w.fuser_w);
           // ---- contextualizer: dZ1 = dc (.) act_c(Yc), dYc = act_c'(Yc) (.) dc (.) Z1
           Tensor gz1, gyc;
           if (act_c == Activation::None) {
             const ProductPair p = mul_pair(c_columns(gcz, s), yc, z.z1);  // dc read in place
             gz1 = p.ya, gyc = p.yb;
           } else {
             const Tensor gc = copy_of(c_columns(gcz, s));
             gz1 = mul(gc, activate(act_c, yc));
             gyc = activation_grad(act_c, yc, mul(gc, z.z1));
           }
           Tensor ga = ctx.outer(gyc, z.z0);  // dA = dYc Z0^T [N, C, C]
           Tensor gz0;
           if (dynamic) {
             if (w.spatial.requires_grad()) gV = tril_product_column_sums(ga, gram.cos);
             const Tensor gsym = sym_weighted(ga, wt);  // dCos + dCos^T, dCos = dA (.) W
             ga = Tensor();
             const Tensor gzn = reshape(matmul(gsym, ctx.contexts(z.zn)), {s.N * s.C, s.half});
             const Tensor direct = ctx.mix_t(gram.a, gyc);  // A^T dYc
             // dZ0 = l2norm'(dZn) + A^T dYc, each packed row's terms summed over the contexts that read it
             gz0 = l2norm_rows_backward(kernels::NormEps::Inside, z.z0, kCosineEps, gzn, direct,
                                        pack.packed() ? &pack.to_full.transposed : nullptr, pack.pad_rows);
           } else {
             if (w.spatial.requires_grad())
               gV = tril(reshape(column_sums(reshape(ga, {s.N, s.C * s.C})), {s.C, s.C}));
             gz0 = reshape(matmul(wt, ctx.context_grads(gyc), true, false), {s.N * s.C, s.half});
             if (pack.packed()) gz0 = apply_map(gz0, pack.to_full.transposed);
           }
           // ---- enricher: dP = act'(.) [dZ0 | dZ1 | dZh], db = colsum dP in the same pass
           Tensor gp = enrich_split_backward(P, z, zh_columns(cz, s), act, gz0, gz1, zh_columns(gcz, s),
                                             w.enricher_b.requires_grad() ? &gb : nullptr);
           gz0 = gz1 = gcz = Tensor();  // freed before the norm's products (the step's memory peak)
           if (w.enricher_w.requires_grad()) gU = matmul(gp, y, true, false);
           // ---- the norm: dh = rmsnorm'(dy) + dF (the residual), and db_o = colsum dF, one pass
           if (norm_pass) {
             const Tensor gy = matmul(gp, w.enricher_w);
             gp = Tensor();
             const RmsNormGrads ng = rmsnorm_rows_backward(x, w.norm_gain, rstd, gy, gf, w.fuser_b.requires_grad());
             gx = ng.gx, gg = ng.gg;
             if (ng.gres_sum.defined()) gbo = ng.gres_sum;
           }
           return {x.requires_grad() ? gx : Tensor(), w.norm_gain.requires_grad() ? gg : Tensor(), gU, gb, gV, gO, gbo};
         });
  return out;
}

}  // namespace avey
