#include "avey/activation.h"
#include "avey/block.h"
#include "avey/block_parts.h"
#include "avey/contextualizer.h"
#include "avey/norm.h"
#include "engine/dispatch.h"

namespace avey {

using namespace engine;
using block_parts::mul_per_context;

namespace {

// One operand of a product per context: context n's matrix starts at element offset + n * stride
// of t (a stride of 0 shares one matrix), its rows contiguous.
struct PerContext {
  Tensor t;
  int64_t offset = 0, stride = 0;
};
// C_n = op(A_n) op(B_n) + beta C_n for n < N (op(A_n) M x K, op(B_n) K x cols).
void product(PerContext a, PerContext b, PerContext c, int64_t N, int64_t M, int64_t cols, int64_t K, bool ta, bool tb,
             double beta) {
  AVEY_DISPATCH("matmul", c.t, matmul, a.t.data<T>() + a.offset, b.t.data<T>() + b.offset, c.t.data<T>() + c.offset, N,
                M, cols, K, ta, tb, 1.0, beta, a.stride, b.stride, c.stride);
}
// One product over every row: C = op(A) op(B) + beta C.
void product(const Tensor& a, const Tensor& b, const Tensor& c, int64_t M, int64_t cols, int64_t K, bool ta, bool tb,
             double beta) {
  product({a}, {b}, {c}, 1, M, cols, K, ta, tb, beta);
}

// x [rows, w] in pack's layout -> every context's rows C-S..C-1, [N*S, w] (a copy).
Tensor current_rows(const Tensor& x, const Packing& pack) {
  if (pack.packed()) return apply_map(x, pack.current.map);
  const int64_t w = x.size(1), N = pack.contexts, C = pack.context_rows, S = pack.split_size;
  Tensor y = Tensor::empty({N * S, w}, x.dtype(), x.device());
  AVEY_DISPATCH("copy_cols", y, copy_cols, N, S * w, x.data<T>(), C * w, (C - S) * w, y.data<T>(), S * w, 0, false);
  return y;
}
// The rows of x [N*S, w] put back in pack's layout [rows, w], zero elsewhere; added into `into`
// instead when it is given.
Tensor from_current_rows(const Tensor& x, const Packing& pack, Tensor into = Tensor()) {
  const int64_t w = x.size(1), N = pack.contexts, C = pack.context_rows, S = pack.split_size;
  if (pack.packed()) {
    Tensor y = apply_map(x, pack.current.transposed);
    if (!into.defined()) return y;
    add_(into, y);
    return into;
  }
  if (!into.defined()) into = Tensor::zeros({pack.rows, w}, x.dtype(), x.device());
  AVEY_DISPATCH("copy_cols", into, copy_cols, N, S * w, x.data<T>(), S * w, 0, into.data<T>(), C * w, (C - S) * w, true);
  return into;
}

}  // namespace

Tensor final_block_body(const Tensor& h_in, const Tensor& norm_g, const Tensor& U, const Tensor& b, const Tensor& spatial,
                        const Tensor& O, const Tensor& bo, const Config& cfg, const Packing& pack) {
  const int64_t C = cfg.context_rows(), S = cfg.split_size, r0 = C - S, h = cfg.half_tail(), mh = cfg.head_width();
  const int64_t fi = h + mh;  // the fuser's input width
  const int64_t N = pack.contexts, m = U.size(0), rows = h_in.size(0), d = h_in.size(1), kept = N * S;
  if (h_in.ndim() != 2 || rows != pack.rows || 2 * h + mh != m || norm_g.shape() != std::vector<int64_t>{d})
    fail("final_block_body", "shapes do not match the config: h " + h_in.describe() + ", gain " + norm_g.describe());
  const bool has_act = cfg.enricher_activation != Activation::None;
  const kernels::Unary f = block_parts::enricher_unary(cfg.enricher_activation);
  const Activation cact = cfg.contextualizer_activation;
  const bool dynamic = cfg.dynamic, h_grad = h_in.requires_grad();
  const bool keep_p = block_parts::keeps_preactivation(cfg);
  const Tensor U0 = U.view(0, {h, d}), Ur = U.view(h * d, {fi, d});  // U's rows for Z0, and for [Z1 | Zh]
  const bool packed = pack.packed();
  Tensor y, rstd, yk, P0, Pk, z0, z1, zn, denom, w, wk, cos, a, yc, cz, out;
  Tensor z0c, znc, denomc;  // Z0, Zn and Zn's row norms as whole contexts (packed: gathered)
  {
    NoGrad no_grad;
    y = Tensor::empty(h_in.shape(), h_in.dtype(), h_in.device());
    rstd = Tensor::empty({rows}, h_in.dtype(), h_in.device());
    AVEY_DISPATCH("rmsnorm", y, rmsnorm, rows, d, h_in.data<T>(), norm_g.data<T>(), kRmsEps, y.data<T>(),
                  rstd.data<T>());
    yk = current_rows(y, pack);
    // ---- enricher: Z0 on every row (the contextualizer mixes a context's rows into the current
    // ones), Z1 and Zh on the current rows only
    P0 = Tensor::empty({rows, h}, y.dtype(), y.device());
    product(y, U0, P0, rows, h, d, false, true, 0.0);
    Pk = Tensor::empty({kept, fi}, y.dtype(), y.device());
    product(yk, Ur, Pk, kept, fi, d, false, true, 0.0);
    z0 = Tensor::empty({rows, h}, y.dtype(), y.device());
    z1 = Tensor::empty({N, S, h}, y.dtype(), y.device());
    cz = Tensor::empty({kept, fi}, y.dtype(), y.device());  // the fuser's input [c | Zh], as in block_body
    if (dynamic) {  // Zn = Z0's rows normalised, by the same pass (kept, with denom, for the backward)
      zn = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
      denom = Tensor::empty({rows}, z0.dtype(), z0.device());
    }
    AVEY_DISPATCH("bias_act_split", P0, bias_act_split, rows, h, P0.data<T>(), b.data<T>(), has_act, f, h, 0,
                  z0.data<T>(), nullptr, nullptr, 0, keep_p, dynamic ? zn.data<T>() : nullptr,
                  dynamic ? denom.data<T>() : nullptr, kCosineEps);
    AVEY_DISPATCH("bias_act_split", Pk, bias_act_split, kept, fi, Pk.data<T>(), b.data<T>() + h, has_act, f, h, 0,
                  z1.data<T>(), nullptr, mh > 0 ? cz.data<T>() + h : nullptr, fi, keep_p, nullptr, nullptr, 0.0);
    if (!keep_p) P0 = Pk = Tensor();
    z0c = packed ? apply_map(z0, pack.to_full.map) : z0;
    if (dynamic) {
      znc = packed ? apply_map(zn, pack.to_full.map) : zn;
      denomc = packed ? reshape(apply_map(reshape(denom, {rows, 1}), pack.to_full.map), {N * C}) : denom;
    }
    // ---- contextualizer, current rows: A_k = W_k (.) (Zn_k Zn^T) [S, C], W_k = tril(V)'s last S rows
    w = tril(spatial);
    wk = w.view(r0 * C, {S, C});
    if (dynamic) {
      cos = Tensor::empty({N, S, C}, y.dtype(), y.device());
      product({znc, r0 * h, C * h}, {znc, 0, C * h}, {cos, 0, S * C}, N, S, C, h, false, true, 0.0);
      a = mul_per_context(cos, wk);
    }
    yc = Tensor::empty({N, S, h}, y.dtype(), y.device());
    product(dynamic ? PerContext{a, 0, S * C} : PerContext{wk, 0, 0}, {z0c, 0, C * h}, {yc, 0, S * h}, N, S, h, C, false,
            false, 0.0);
    const Tensor c = reshape(mul(activate(cact, yc), z1), {kept, h});
    AVEY_DISPATCH("copy_cols", c, copy_cols, kept, h, c.data<T>(), h, 0, cz.data<T>(), fi, 0, false);
    // ---- fuser and residual on the current rows: out = h_k + b_o + cz O^T
    out = Tensor::empty({kept, d}, h_in.dtype(), h_in.device());
    const Tensor hk = current_rows(h_in, pack);
    AVEY_DISPATCH("matmul", out, matmul_residual_bias, cz.data<T>(), fi, O.data<T>(), fi, hk.data<T>(), bo.data<T>(),
                  out.data<T>(), kept, d, fi, false, true);
  }
  record(out, "avey.final_block_body", {h_in, norm_g, U, b, spatial, O, bo},
         [=](const Tensor& gf) -> std::vector<Tensor> {
           Tensor gh, gg, gU, gb, gV, gO, gbo;
           const bool norm_pass = h_grad || norm_g.requires_grad();
           if (bo.requires_grad() && !(norm_pass && gf.is_cuda())) gbo = sum_rows(gf);
           // ---- fuser: dO = dF^T cz, dcz = [dc | dZh] = dF O (current rows)
           if (O.requires_grad()) gO = matmul(gf, cz, true, false);
           const Tensor gcz = matmul(gf, O);
           const Tensor gc = reshape(mh > 0 ? slice_cols(gcz, 0, h) : gcz, {N, S, h});
           // ---- contextualizer: dZ1 = dc (.) act(Yc), dYc = act'(Yc) (.) dc (.) Z1, dA_k = dYc Z0^T [S, C]
           Tensor gz1 = mul(gc, activate(cact, yc)), gyc = activation_grad(cact, yc, mul(gc, z1));
           Tensor ga = Tensor::empty({N, S, C}, gyc.dtype(), gyc.device());
           product({gyc, 0, S * h}, {z0c, 0, C * h}, {ga, 0, S * C}, N, S, C, h, false, true, 0.0);
           Tensor gz0 = Tensor::empty({N * C, h}, z0.dtype(), z0.device());  // whole contexts
           Tensor gvk;  // dV's last S rows (the rows above get no gradient: only the current rows use them)
           if (dynamic) {
             if (spatial.requires_grad()) gvk = reshape(sum_rows(reshape(mul(ga, cos), {N, S * C})), {S, C});
             // dZn = dCos_k^T Zn_k on every row, + dCos_k Zn on the current rows; dCos_k = dA_k (.) W_k
             Tensor gcos = mul_per_context(ga, wk), gzn = Tensor::empty(gz0.shape(), z0.dtype(), z0.device());
             product({gcos, 0, S * C}, {znc, r0 * h, C * h}, {gzn, 0, C * h}, N, C, h, S, true, false, 0.0);
             product({gcos, 0, S * C}, {znc, 0, C * h}, {gzn, r0 * h, C * h}, N, S, h, C, false, false, 1.0);
             AVEY_DISPATCH("l2norm_rows_backward", z0, l2norm_rows_backward, NormEps::Inside, N * C, h, z0c.data<T>(),
                           kCosineEps, denomc.data<T>(), gzn.data<T>(), gz0.data<T>());
             product({a, 0, S * C}, {gyc, 0, S * h}, {gz0, 0, C * h}, N, C, h, S, true, false, 1.0);  // += A_k^T dYc
           } else {
             if (spatial.requires_grad()) gvk = reshape(sum_rows(reshape(ga, {N, S * C})), {S, C});
             product({wk, 0, 0}, {gyc, 0, S * h}, {gz0, 0, C * h}, N, C, h, S, true, false, 0.0);
           }
           if (packed) gz0 = apply_map(gz0, pack.to_full.transposed);  // padding rows: summed
           if (gvk.defined()) gV = concat_rows({Tensor::zeros({r0, C}, gvk.dtype(), gvk.device()), tril(gvk, r0)});
           // ---- enricher: dP0 = act'(.) dZ0 on every row, dPk = act'(.) [dZ1 | dZh] on the current rows
           Tensor gp0 = Tensor::empty({rows, h}, y.dtype(), y.device());
           Tensor gpk = Tensor::empty({kept, fi}, y.dtype(), y.device());
           if (b.requires_grad()) gb = Tensor::empty({m}, y.dtype(), y.device());
           AVEY_DISPATCH("act_grad_concat", gp0, act_grad_concat, rows, h, P0.defined() ? P0.data<T>() : nullptr,
                         z0.data<T>(), nullptr, nullptr, 0, has_act, f, h, 0, gz0.data<T>(), nullptr, nullptr,
                         gp0.data<T>(), gb.defined() ? gb.data<T>() : nullptr);
           AVEY_DISPATCH("act_grad_concat", gpk, act_grad_concat, kept, fi, Pk.defined() ? Pk.data<T>() : nullptr,
                         z1.data<T>(), nullptr, mh > 0 ? cz.data<T>() + h : nullptr, fi, has_act, f, h, 0,
                         gz1.data<T>(), nullptr, mh > 0 ? gcz.data<T>() + h : nullptr, gpk.data<T>(),
                         gb.defined() ? gb.data<T>() + h : nullptr);
           if (U.requires_grad()) {  // dU = [dP0^T Y ; dPk^T Y_k]
             gU = Tensor::empty(U.shape(), U.dtype(), U.device());
             product(gp0, y, gU, h, d, rows, true, false, 0.0);
             product(gpk, yk, gU.view(h * d, {fi, d}), fi, d, kept, true, false, 0.0);
           }
           // ---- the norm: dY = dP0 U0 (+ dPk Ur on the current rows); dh = rmsnorm'(dY) + dF on the current rows
           Tensor gres = from_current_rows(gf, pack);
           if (norm_pass) {
             Tensor gy = Tensor::empty(h_in.shape(), y.dtype(), y.device()), gyk = Tensor::empty({kept, d}, y.dtype(), y.device());
             product(gp0, U0, gy, rows, d, h, false, false, 0.0);
             product(gpk, Ur, gyk, kept, d, fi, false, false, 0.0);
             from_current_rows(gyk, pack, gy);
             block_parts::NormGrads ng =
                 block_parts::norm_backward_residual(h_in, norm_g, rstd, gy, gres, bo.requires_grad());
             gh = ng.gh, gg = ng.gg;
             if (ng.gbo.defined()) gbo = ng.gbo;
           } else if (h_grad) {
             gh = gres;
           }
           return {h_grad ? gh : Tensor(), norm_g.requires_grad() ? gg : Tensor(), gU, gb, gV, gO, gbo};
         });
  return out;
}

}  // namespace avey
