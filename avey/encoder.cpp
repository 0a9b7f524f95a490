// Avey-B's layers and compression (avey/encoder.h has the math and the derivation).
#include "avey/encoder.h"

#include <fmt/format.h>

#include "avey/enricher_ops.h"
#include "avey/norm.h"
#include "engine/fused_ops.h"

namespace avey {

using namespace engine;

namespace {

struct LayerSizes {
  int64_t d, S, rows, N;
};

LayerSizes layer_sizes(const std::string& op, const Tensor& h, const EncoderLayerWeights& w, const Config& cfg) {
  const int64_t d = cfg.d_embed, S = cfg.split_size;
  auto is = [](const Tensor& t, const Shape& s) { return t.defined() && t.shape() == s; };
  if (h.ndim() != 2 || h.size(1) != d || h.size(0) % S != 0 || !is(w.norm_gain, {d}) || !is(w.enricher_w, {4 * d, d}) ||
      !is(w.enricher_b, {4 * d}) || !is(w.fuser_w, {d, 3 * d}) || !is(w.fuser_b, {d}) || !w.alpha.defined() ||
      w.alpha.numel() != 1 || (w.is_static() && !is(w.spatial, {S, S})))
    fail(op, fmt::format("h {} or the weights do not fit the config (d {}, S {})", h.describe(), d, S));
  return {d, S, h.size(0), h.size(0) / S};
}

}  // namespace

Tensor encoder_layer(const Tensor& h, const EncoderLayerWeights& w, const Config& cfg, bool composed) {
  return composed ? encoder_layer_composed(h, w, cfg) : encoder_layer_fused(h, w, cfg);
}

Tensor encoder_layer_composed(const Tensor& h, const EncoderLayerWeights& w, const Config& cfg) {
  const auto [d, S, rows, N] = layer_sizes("encoder_layer", h, w, cfg);
  const Tensor y = rms_norm_composed(h, w.norm_gain, cfg.eps);
  const Tensor u = gelu(add(matmul(y, w.enricher_w, false, true), w.enricher_b));
  const std::vector<Tensor> parts = split_cols(u, {d, d, 2 * d});  // z | gt | byp
  const Tensor z = reshape(parts[0], {N, S, d});
  Tensor c;
  if (w.is_static()) {
    c = matmul(w.spatial, z);
  } else {
    const Tensor zn = reshape(l2norm_rows(parts[0], kEncoderNormFloor, NormEps::Max), {N, S, d});
    c = matmul(l1norm_rows(matmul(zn, zn, false, true), kEncoderNormFloor), z);
  }
  const Tensor cz = concat_cols({mul(parts[1], reshape(c, {rows, d})), parts[2]});
  return add(add(matmul(cz, w.fuser_w, false, true), w.fuser_b), mul(h, w.alpha));
}

Tensor encoder_layer_fused(const Tensor& x, const EncoderLayerWeights& w, const Config& cfg) {
  const auto [d, S, rows, N] = layer_sizes("encoder_layer", x, w, cfg);
  const bool is_static = w.is_static();
  const double eps = cfg.eps;
  Tensor y, rstd, P, c, zn, a, an, cz, out;  // cz = [gt (.) c | byp], the fuser's input
  EnrichedParts z;                           // z.z0 = z, z.z1 = gt
  {
    NoGrad no_grad;
    const RmsNormRows n = rmsnorm_rows(x, w.norm_gain, eps);
    y = n.y, rstd = n.rstd;
    P = matmul(y, w.enricher_w, false, true);  // [rows, 4d]
    cz = Tensor::empty({rows, 3 * d}, x.dtype(), x.device());
    // gelu'(P) needs P: kept; byp written straight into cz
    z = enrich_split(P, w.enricher_b, Activation::Gelu, d, d, Columns{cz, d, 2 * d}, true, false, 0.0);
    const Tensor z3 = reshape(z.z0, {N, S, d});
    if (is_static) {
      c = matmul(w.spatial, z3);
    } else {
      zn = l2norm_rows(z.z0, kEncoderNormFloor, NormEps::Max);
      const Tensor zn3 = reshape(zn, {N, S, d});
      a = matmul(zn3, zn3, false, true);  // [N, S, S]
      an = l1norm_rows(a, kEncoderNormFloor);
      c = matmul(an, z3);
    }
    c = reshape(c, {rows, d});
    copy_into(mul(z.z1, c), Columns{cz, 0, d});
    out = linear_residual(cz, w.fuser_w, w.fuser_b, mul(x, w.alpha));  // alpha x + b_f + cz W_f^T
  }
  record(out, "avey.encoder_layer",
         {x, w.norm_gain, w.enricher_w, w.enricher_b, w.spatial, w.fuser_w, w.fuser_b, w.alpha},
         [=, d = d, S = S, rows = rows, N = N](const Tensor& gf) -> std::vector<Tensor> {
           Tensor gx, gg, gWe, gbe, gM, gWf, gbf, galpha;
           if (w.alpha.requires_grad()) galpha = reshape(sum(mul(gf, x)), w.alpha.shape());
           if (w.fuser_b.requires_grad()) gbf = column_sums(gf);
           // ---- fuser: dW_f = dF^T cz, [dg | dbyp] = dF W_f
           if (w.fuser_w.requires_grad()) gWf = matmul(gf, cz, true, false);
           const Tensor gcz = matmul(gf, w.fuser_w);  // [rows, 3d]
           const ProductPair gate = mul_pair(Columns{gcz, 0, d}, c, z.z1);  // dgt = dg (.) c, dc = dg (.) gt
           const Tensor gc3 = reshape(gate.yb, {N, S, d}), z3 = reshape(z.z0, {N, S, d});
           // ---- the split mixing
           Tensor gz;
           if (is_static) {
             if (w.spatial.requires_grad())
               gM = reshape(column_sums(reshape(matmul(gc3, z3, false, true), {N, S * S})), {S, S});
             gz = reshape(matmul(w.spatial, gc3, true, false), {rows, d});
           } else {
             const Tensor gan = matmul(gc3, z3, false, true);                       // dAn = dc z^T
             const Tensor direct = reshape(matmul(an, gc3, true, false), {rows, d});  // An^T dc
             const Tensor ga = l1norm_rows_backward(a, kEncoderNormFloor, gan);
             const Tensor gzn = reshape(matmul(add(ga, transpose(ga)), reshape(zn, {N, S, d})), {rows, d});
             gz = l2norm_rows_backward(NormEps::Max, z.z0, kEncoderNormFloor, gzn, direct);  // l2norm'(dzn) + direct
           }
           // ---- enricher: dP = gelu'(P) (.) [dz | dgt | dbyp], db_e in the same pass
           const Tensor gp = enrich_split_backward(P, z, Columns{cz, d, 2 * d}, Activation::Gelu, gz, gate.ya,
                                                   Columns{gcz, d, 2 * d},
                                                   w.enricher_b.requires_grad() ? &gbe : nullptr);
           if (w.enricher_w.requires_grad()) gWe = matmul(gp, y, true, false);
           // ---- the norm: dh = rmsnorm'(dy) + alpha dF
           if (x.requires_grad() || w.norm_gain.requires_grad()) {
             const RmsNormGrads ng = rmsnorm_rows_backward(x, w.norm_gain, rstd, matmul(gp, w.enricher_w),
                                                           mul(gf, w.alpha), false);
             gx = ng.gx, gg = ng.gg;
           }
           return {x.requires_grad() ? gx : Tensor(), w.norm_gain.requires_grad() ? gg : Tensor(), gWe, gbe, gM, gWf,
                   gbf, galpha};
         });
  return out;
}

Tensor compress_contexts(const Tensor& ctx, const Tensor& down_proj, const Tensor& x) {
  const int64_t N = ctx.size(0), d = ctx.size(2), S = down_proj.size(0);
  if (ctx.ndim() != 3 || down_proj.ndim() != 2 || down_proj.size(1) != ctx.size(1) || x.shape() != Shape{N * S, d})
    fail("compress_contexts", "expected ctx [N, C, d], P [S, C], x [N*S, d], got " + ctx.describe() + ", " +
                                  down_proj.describe() + ", " + x.describe());
  return add(reshape(matmul(down_proj, ctx), {N * S, d}), x);
}

}  // namespace avey
