#include "avey/block.h"

#include "avey/activation.h"
#include "avey/block_parts.h"
#include "avey/contextualizer.h"
#include "avey/norm.h"
#include "engine/dispatch.h"

namespace avey {

using namespace engine;
using block_parts::mul_per_context;

namespace {

// The GPU's bf16 path computes the contextualizer's four triangular products with the kernels
// of kernels/cuda/tril_matmul.cu: only the tiles on and below the diagonal (cos, a, dA), or K up
// to the diagonal (Yc = A Z0, dZ0 += A^T dYc), with a = cos (.) W and c = Yc (.) Z1 as the
// products' epilogues (c written into the fuser input [c | Zh], whose rows, h + mh elements,
// must then be whole 16-byte vectors). Tiles above the diagonal of cos, a and dA are never
// written; what reads them (tril_product_column_sums, sym_weighted) reads only the lower triangle.
bool use_triangle_kernels(const Tensor& t, const Config& cfg) {
#ifdef AVEY_HAVE_CUDA
  return t.is_cuda() && t.dtype() == DType::BF16 && cfg.dynamic && cfg.context_rows() % 128 == 0 &&
         cfg.half_tail() % 128 == 0 && cfg.fuser_in() % 8 == 0 && kernels::cuda::tril_matmul_available();
#else
  (void)t, (void)cfg;
  return false;
#endif
}

#ifdef AVEY_HAVE_CUDA
kernels::bf16* bf(Tensor t) { return t.data<kernels::bf16>(); }
#endif

}  // namespace

Tensor block_body(const Tensor& h_in, const Tensor& norm_g, const Tensor& U, const Tensor& b, const Tensor& spatial,
                  const Tensor& O, const Tensor& bo, const Config& cfg, const Packing& pack) {
  const int64_t C = cfg.context_rows(), h = cfg.half_tail(), mh = cfg.head_width(), fi = h + mh, m = U.size(0);
  const int64_t N = pack.contexts, rows = h_in.size(0), d = h_in.size(1);
  if (h_in.ndim() != 2 || rows != pack.rows || 2 * h + mh != m || norm_g.shape() != std::vector<int64_t>{d})
    fail("block_body", "shapes do not match the config: h " + h_in.describe() + ", gain " + norm_g.describe());
  const bool has_act = cfg.enricher_activation != Activation::None;
  const kernels::Unary f = block_parts::enricher_unary(cfg.enricher_activation);
  const Activation cact = cfg.contextualizer_activation;
  const bool dynamic = cfg.dynamic;
  const bool h_grad = h_in.requires_grad();
  const bool tri = use_triangle_kernels(h_in, cfg);
  const bool packed = pack.packed();
  const bool c_epilogue = tri && cact == Activation::None;  // tril_lower_mm writes c into cz
  const bool keep_p = block_parts::keeps_preactivation(cfg);
  Tensor y, rstd, P, z0, z1, zn, denom, yc, cos, a, cz, out;  // a = tril(V) (.) cos, kept for the backward
  Tensor w;                                                       // tril(V), for both passes
  // Packed, the contextualizer works on whole contexts [N*C, ...]: the triangle kernels read Z0
  // and Zn through the row maps and write Yc and c into the packed rows; otherwise Z0, Zn and
  // Zn's row norms are gathered into z0c, znc, denomc (the packed tensors themselves when
  // nothing is packed), and Yc gathered back.
  Tensor z0c, znc, denomc;
  auto to_ctx = [pack, packed](const Tensor& x) { return packed ? apply_map(x, pack.to_full.map) : x; };
#ifdef AVEY_HAVE_CUDA
  // row maps for the triangle kernels: context row -> packed row, and -> the packed row it
  // computes (-1 where another context computes it)
  kernels::cuda::PackedRows ctx_rows, own_rows;
  if (packed) {
    ctx_rows = {pack.pad.data<int32_t>(), pack.offset.data<int32_t>(), -1};
    own_rows = {ctx_rows.pad, ctx_rows.offset, int(pack.owner)};
  }
#endif
  {
    NoGrad no_grad;
    y = Tensor::empty(h_in.shape(), h_in.dtype(), h_in.device());
    rstd = Tensor::empty({rows}, h_in.dtype(), h_in.device());
    AVEY_DISPATCH("rmsnorm", y, rmsnorm, rows, d, h_in.data<T>(), norm_g.data<T>(), kRmsEps, y.data<T>(),
                  rstd.data<T>());
    P = matmul(y, U, false, true);  // [rows, m]
    z0 = Tensor::empty({rows, h}, y.dtype(), y.device());
    z1 = Tensor::empty({rows, h}, y.dtype(), y.device());
    // cz = [c | Zh] [rows, h + mh], the fuser's input as one matrix: Zh goes into its columns h..
    // here, c into its first h below (without a bypass, mh = 0, cz is c itself)
    if (mh > 0 || c_epilogue) cz = Tensor::empty({rows, fi}, y.dtype(), y.device());
    if (dynamic) {  // Zn = Z0's rows normalised, written by the same pass; kept (with denom) for the backward
      zn = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
      denom = Tensor::empty({rows}, z0.dtype(), z0.device());
    }
    AVEY_DISPATCH("bias_act_split", P, bias_act_split, rows, m, P.data<T>(), b.data<T>(), has_act, f, h, h,
                  z0.data<T>(), z1.data<T>(), mh > 0 ? cz.data<T>() + h : nullptr, fi, keep_p,
                  dynamic ? zn.data<T>() : nullptr, dynamic ? denom.data<T>() : nullptr, kCosineEps);
    if (!keep_p) P = Tensor();  // backward takes act' from z: the pre-activation is not kept
    w = tril(spatial);
    if (tri) {
#ifdef AVEY_HAVE_CUDA
      ::engine::profile::Scope prof("tril_matmul", y.device());
      cos = Tensor::empty({N, C, C}, y.dtype(), y.device());
      a = Tensor::empty({N, C, C}, y.dtype(), y.device());
      yc = Tensor::empty({rows, h}, y.dtype(), y.device());
      kernels::cuda::tril_gram(N, C, h, bf(zn), ctx_rows, bf(w), bf(cos), bf(a));
      kernels::cuda::tril_lower_mm(N, C, h, bf(a), bf(z0), ctx_rows, bf(yc), c_epilogue ? bf(z1) : nullptr,
                                   c_epilogue ? bf(cz) : nullptr, fi, own_rows);
#endif
    } else {
      z0c = reshape(to_ctx(z0), {N, C, h});
      if (dynamic) {
        znc = reshape(to_ctx(zn), {N, C, h});
        denomc = reshape(to_ctx(reshape(denom, {rows, 1})), {N * C});
        cos = matmul(znc, znc, false, true);
        a = mul_per_context(cos, w);
        yc = matmul(a, z0c);
      } else {
        yc = matmul(w, z0c);
      }
      yc = reshape(yc, {N * C, h});
      if (packed) yc = apply_map(yc, pack.to_packed.map);  // the rows the packed layout keeps, [rows, h]
    }
    if (!c_epilogue) {
      Tensor c = reshape(mul(activate(cact, yc), z1), {rows, h});
      if (mh > 0)
        AVEY_DISPATCH("copy_cols", c, copy_cols, rows, h, c.data<T>(), h, 0, cz.data<T>(), fi, 0, false);
      else
        cz = c;
    }
    // out = h + b_o + cz O^T: one product (K = h + mh), the residual and the bias entering with it
    // (on the GPU as its epilogue: no separate pass).
    out = Tensor::empty(h_in.shape(), h_in.dtype(), h_in.device());
    AVEY_DISPATCH("matmul", out, matmul_residual_bias, cz.data<T>(), fi, O.data<T>(), fi, h_in.data<T>(), bo.data<T>(),
                  out.data<T>(), rows, d, fi, false, true);
  }
  record(out, "avey.block_body", {h_in, norm_g, U, b, spatial, O, bo},
         [=](const Tensor& gf) -> std::vector<Tensor> {
           Tensor gh, gg, gU, gb, gV, gO, gbo;
           // ---- fuser: dO = dF^T cz, dcz = [dc | dZh] = dF O
           const bool norm_pass = h_grad || norm_g.requires_grad();
           // on the GPU the norm's backward pass, which reads gf anyway, sums its columns: db_o
           if (bo.requires_grad() && !(norm_pass && gf.is_cuda())) gbo = sum_rows(gf);
           if (O.requires_grad()) gO = matmul(gf, cz, true, false);
           Tensor gcz = matmul(gf, O);  // [rows, h + mh]
           // ---- contextualizer (as avey/contextualizer.cpp, GPU branch), dc = dcz's first h columns
           Tensor gz1, gyc;
           if (cact == Activation::None && gcz.is_cuda()) {  // both products in one pass over dc, read in place
             gz1 = Tensor::empty(yc.shape(), yc.dtype(), yc.device());
             gyc = Tensor::empty(yc.shape(), yc.dtype(), yc.device());
             ::engine::profile::Scope prof("binary", gcz.device());
             AVEY_DISPATCH_CUDA("mul_pair", gcz, mul_pair, rows, h, gcz.data<T>(), fi, yc.data<T>(), z1.data<T>(),
                                gz1.data<T>(), gyc.data<T>());
           } else {
             const Tensor gc = mh > 0 ? slice_cols(gcz, 0, h) : gcz;
             gz1 = mul(gc, activate(cact, yc));
             gyc = activation_grad(cact, yc, mul(gc, z1));
           }
           Tensor ga, gz0;  // dA [N, C, C], dZ0 [rows, h]
           if (tri) {
#ifdef AVEY_HAVE_CUDA
             // dYc read on the contexts' rows through own_rows: zero where another context computes the row
             ::engine::profile::Scope prof("tril_matmul", gyc.device());
             ga = Tensor::empty({N, C, C}, gyc.dtype(), gyc.device());
             kernels::cuda::tril_nt(N, C, h, bf(gyc), own_rows, bf(z0), ctx_rows, bf(ga));
#endif
           } else {
             // dYc on the contexts' rows: zero where another context computes the packed row
             if (packed) gyc = apply_map(gyc, pack.to_packed.transposed);
             gyc = reshape(gyc, {N, C, h});
             ga = matmul(gyc, z0c, false, true);
           }
           if (dynamic) {
             if (spatial.requires_grad() && ga.is_cuda()) {  // one pass over the lower triangles
               gV = Tensor::empty({C, C}, ga.dtype(), ga.device());
               ::engine::profile::Scope prof("tril_product_column_sums", ga.device());
               AVEY_DISPATCH_CUDA("tril_product_column_sums", ga, tril_product_column_sums, N, C, ga.data<T>(),
                                  cos.data<T>(), gV.data<T>());
             } else if (spatial.requires_grad()) {
               gV = tril(reshape(sum_rows(reshape(mul(ga, cos), {N, C * C})), {C, C}));
             }
             // dZn = dCos Zn + dCos^T Zn = (dCos + dCos^T) Zn, dCos = dA (.) W: one product
             Tensor gsym;
             if (ga.is_cuda()) {
               gsym = Tensor::empty(ga.shape(), ga.dtype(), ga.device());
               ::engine::profile::Scope prof("sym_weighted", ga.device());
               AVEY_DISPATCH_CUDA("sym_weighted", ga, sym_weighted, N, C, ga.data<T>(), w.data<T>(), gsym.data<T>());
             } else {
               Tensor gcos = mul_per_context(ga, w);
               gsym = add(gcos, transpose(gcos));
             }
             ga = Tensor();
             if (tri) {
#ifdef AVEY_HAVE_CUDA
               // dZ0 = l2norm'(dZn) + A^T dYc in one pass, each packed row's two terms summed over
               // the contexts that read it (to_full's transpose; nothing to sum unpacked)
               const Tensor gzn = matmul(gsym, reshape(to_ctx(zn), {N, C, h}));  // cuBLAS: whole contexts
               const Tensor direct = Tensor::empty({N * C, h}, gyc.dtype(), gyc.device());
               {
                 ::engine::profile::Scope prof("tril_matmul", gyc.device());
                 kernels::cuda::tril_upper_t_mm(N, C, h, bf(a), bf(gyc), own_rows, bf(direct));
               }
               gz0 = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
               ::engine::profile::Scope prof("l2norm_rows_backward", gyc.device());
               kernels::cuda::l2norm_rows_backward_gathered<kernels::bf16>(
                   NormEps::Inside, rows, pack.pad_rows, h, bf(z0), kCosineEps,
                   packed ? pack.to_full.transposed.ptr.data<int32_t>() : nullptr,
                   packed ? pack.to_full.transposed.src.data<int32_t>() : nullptr, bf(gzn), bf(direct), bf(gz0));
#endif
             } else {
               Tensor gzn = matmul(gsym, znc);
               gz0 = Tensor::empty(z0c.shape(), z0.dtype(), z0.device());
               AVEY_DISPATCH("l2norm_rows_backward", z0, l2norm_rows_backward, NormEps::Inside, N * C, h, z0c.data<T>(),
                             kCosineEps, denomc.data<T>(), gzn.data<T>(), gz0.data<T>());
               // gz0 += A^T gyc (the direct path; beta = 1)
               AVEY_DISPATCH("matmul", a, matmul, a.data<T>(), gyc.data<T>(), gz0.data<T>(), N, C, h, C, true, false,
                             1.0, 1.0, C * C, C * h, C * h);
             }
           } else {
             if (spatial.requires_grad()) gV = tril(reshape(sum_rows(reshape(ga, {N, C * C})), {C, C}));
             gz0 = matmul(w, gyc, true, false);
           }
           // padding rows: summed over the contexts that read them
           if (packed && !tri) gz0 = apply_map(reshape(gz0, {N * C, h}), pack.to_full.transposed);
           // ---- enricher
           // gp = act'(.) [dZ0 | dZ1 | dZh], and the bias's gradient (gp's column sums) in the same pass;
           // Zh and dZh read in place in cz and dcz (rows h + mh apart)
           Tensor gp = Tensor::empty({rows, m}, y.dtype(), y.device());
           if (b.requires_grad()) gb = Tensor::empty({m}, y.dtype(), y.device());
           AVEY_DISPATCH("act_grad_concat", gp, act_grad_concat, rows, m, P.defined() ? P.data<T>() : nullptr,
                         z0.data<T>(), z1.data<T>(), mh > 0 ? cz.data<T>() + h : nullptr, fi, has_act, f, h, h,
                         gz0.data<T>(), gz1.data<T>(), mh > 0 ? gcz.data<T>() + h : nullptr, gp.data<T>(),
                         gb.defined() ? gb.data<T>() : nullptr);
           if (U.requires_grad()) gU = matmul(gp, y, true, false);
           gz0 = gz1 = gcz = Tensor();
           // ---- the norm: dh = rmsnorm'(dy) + gf (the residual), summed in the same pass on the GPU
           if (norm_pass) {
             Tensor gy = matmul(gp, U);
             gp = Tensor();
             block_parts::NormGrads ng =
                 block_parts::norm_backward_residual(h_in, norm_g, rstd, gy, gf, bo.requires_grad());
             gh = ng.gh, gg = ng.gg;
             if (ng.gbo.defined()) gbo = ng.gbo;
           } else if (h_grad) {
             gh = gf;
           }
           return {h_grad ? gh : Tensor(), norm_g.requires_grad() ? gg : Tensor(), gU, gb, gV, gO, gbo};
         });
  return out;
}

}  // namespace avey
