#include "avey/contextualizer_ops.h"

#include "engine/dispatch.h"
#include "avey/kernels/kernels.h"
#ifdef AVEY_HAVE_CUDA
#include "avey/kernels/cuda/tril_matmul.h"
#endif

namespace avey {

using namespace engine;

namespace {

#ifdef AVEY_HAVE_CUDA
namespace tri = ::avey::kernels::cuda;
kernels::bf16* bf(Tensor t) { return t.data<kernels::bf16>(); }  // a handle may write what it points to
// The packed layout's row maps as the triangle kernels read them: a context's rows as packed
// rows (ctx), and as the packed rows it computes (own: -1 where another context computes them).
tri::PackedRows context_rows(const Packing& p) {
  return p.packed() ? tri::PackedRows{p.pad.data<int32_t>(), p.offset.data<int32_t>(), -1} : tri::PackedRows{};
}
tri::PackedRows own_rows(const Packing& p) {
  tri::PackedRows r = context_rows(p);
  if (p.packed()) r.owner = int(p.owner);
  return r;
}
#endif

// Elsewhere, one batch of Eigen's or cuBLAS's products over whole contexts: a and b [N, *, *] (a
// 2-D operand is shared by the batch), and the half a triangle leaves out (the CPU skips it).
Tensor context_product(const Tensor& a, const Tensor& b, bool ta, bool tb, ::kernels::Triangle triangle) {
  const int64_t N = a.ndim() == 3 ? a.size(0) : b.size(0);
  const int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1), n = tb ? b.size(-2) : b.size(-1);
  auto batch = [](const Tensor& x) { return MatrixBatch{x, 0, x.ndim() == 3 ? x.size(1) * x.size(2) : 0}; };
  Tensor c = Tensor::empty({N, m, n}, a.dtype(), a.device());
  matmul_into(batch(a), batch(b), {c, 0, m * n}, N, m, n, k, ta, tb, 0.0, triangle);
  return c;
}

}  // namespace

bool triangle_kernels_apply(const Tensor& like, const Config& cfg) {
#ifdef AVEY_HAVE_CUDA
  // bf16 on the GPU; C and h whole 128-row tiles; the fuser's input rows (c's epilogue) whole 16-byte vectors
  return like.is_cuda() && like.dtype() == DType::BF16 && cfg.dynamic && cfg.context_rows() % 128 == 0 &&
         cfg.half_tail() % 128 == 0 && cfg.fuser_in() % 8 == 0 && tri::tril_matmul_available();
#else
  (void)like, (void)cfg;
  return false;
#endif
}

ContextProducts::ContextProducts(const Config& cfg, const Packing& pack, const Tensor& like)
    : pack_(pack), N_(pack.contexts), C_(pack.context_rows), triangles_(triangle_kernels_apply(like, cfg)) {}

Tensor ContextProducts::contexts(const Tensor& x) const {
  return reshape(gather_contexts(x, pack_), {N_, C_, x.size(-1)});
}

Tensor ContextProducts::context_grads(const Tensor& g) const {
  return reshape(pack_.packed() ? apply_map(g, pack_.to_packed.transposed) : g, {N_, C_, g.size(-1)});
}

ContextProducts::Gram ContextProducts::gram(const Tensor& zn, const Tensor& w) const {
  Gram g;
  if (triangles_) {
#ifdef AVEY_HAVE_CUDA
    profile::Scope prof("tril_matmul", zn.device());
    g.cos = Tensor::empty({N_, C_, C_}, zn.dtype(), zn.device());
    g.a = Tensor::empty({N_, C_, C_}, zn.dtype(), zn.device());
    tri::tril_gram(N_, C_, zn.size(-1), bf(zn), context_rows(pack_), bf(w), bf(g.cos), bf(g.a));
#endif
    return g;
  }
  const Tensor znc = contexts(zn);
  g.cos = context_product(znc, znc, false, true, ::kernels::Triangle::LowerC);
  g.a = mul_per_context(g.cos, w);
  return g;
}

Tensor ContextProducts::mix(const Tensor& a, const Tensor& z0, const Tensor& gate, const Columns& out) const {
  const int64_t h = z0.size(-1);
  if (triangles_) {
    Tensor yc = Tensor::empty(z0.shape(), z0.dtype(), z0.device());
#ifdef AVEY_HAVE_CUDA
    profile::Scope prof("tril_matmul", z0.device());
    tri::tril_lower_mm(N_, C_, h, bf(a), bf(z0), context_rows(pack_), bf(yc), gate.defined() ? bf(gate) : nullptr,
                       gate.defined() ? out.data<kernels::bf16>() : nullptr, gate.defined() ? out.stride() : 0,
                       own_rows(pack_));
#endif
    return yc;
  }
  Tensor yc = reshape(context_product(a, contexts(z0), false, false, ::kernels::Triangle::LowerA), {N_ * C_, h});
  if (pack_.packed()) yc = apply_map(yc, pack_.to_packed.map);  // the rows the packed layout keeps
  if (gate.defined()) copy_into(mul(yc, gate), out);
  return yc;
}

Tensor ContextProducts::outer(const Tensor& gyc, const Tensor& z0) const {
  if (triangles_) {
    Tensor ga = Tensor::empty({N_, C_, C_}, gyc.dtype(), gyc.device());
#ifdef AVEY_HAVE_CUDA
    profile::Scope prof("tril_matmul", gyc.device());
    tri::tril_nt(N_, C_, gyc.size(-1), bf(gyc), own_rows(pack_), bf(z0), context_rows(pack_), bf(ga));
#endif
    return ga;
  }
  return context_product(context_grads(gyc), contexts(z0), false, true, ::kernels::Triangle::LowerC);
}

Tensor ContextProducts::mix_t(const Tensor& a, const Tensor& gyc) const {
  const int64_t h = gyc.size(-1);
  if (triangles_) {
    Tensor out = Tensor::empty({N_ * C_, h}, gyc.dtype(), gyc.device());
#ifdef AVEY_HAVE_CUDA
    profile::Scope prof("tril_matmul", gyc.device());
    tri::tril_upper_t_mm(N_, C_, h, bf(a), bf(gyc), own_rows(pack_), bf(out));
#endif
    return out;
  }
  return reshape(context_product(a, context_grads(gyc), true, false, ::kernels::Triangle::UpperA), {N_ * C_, h});
}

Tensor mul_per_context(const Tensor& x, const Tensor& w) {
  const int64_t N = x.size(0), R = x.size(1), C = x.size(2);
  return reshape(mul(reshape(x, {N, R * C}), reshape(w, {R * C})), {N, R, C});
}

Tensor sym_weighted(const Tensor& g, const Tensor& w) {
  const int64_t N = g.size(0), C = g.size(1);
  Tensor s = Tensor::empty(g.shape(), g.dtype(), g.device());
  AVEY_DISPATCH_IN(::avey::kernels, "sym_weighted", g, sym_weighted, N, C, g.data<T>(), w.data<T>(), s.data<T>());
  return s;
}

Tensor tril_product_column_sums(const Tensor& a, const Tensor& b) {
  const int64_t N = a.size(0), C = a.size(1);
  Tensor out = Tensor::empty({C, C}, a.dtype(), a.device());
  AVEY_DISPATCH_IN(::avey::kernels, "tril_product_column_sums", a, tril_product_column_sums, N, C, a.data<T>(),
                   b.data<T>(), out.data<T>());
  return out;
}

}  // namespace avey
