// The ranker's context selection and the fused context builder on the GPU against the CPU
// (avey/ranker.h; kernels select_contexts, selection_matrix, selection_score_grad), on random
// f32 scores with many exact ties, both norms, with and without the ranker and split weighting,
// and query lists other than 0..n-1:
//   the plan: the same slots, indices and empty slots, and the same weights bit for bit (both
//     computed in double from the same f32 scores), also once rounded to bf16;
//   build_contexts in f32: the same forward bits; dX = P^T dH and the scores' gradient within
//     1e-5 (normwise; cuBLAS and the GPU's column sums add in another order than the CPU);
//   build_contexts on bf16 splits with f32 scores (mixed precision): the forward equals the CPU's
//     f32 product of the same bf16 values rounded to bf16.
// Every GPU allocation is poisoned with NaN, so an element a kernel forgot to write fails.
//
// Skipped without a GPU; without a CUDA build there is one test that says so.
#include "tests/testing.h"

#ifndef AVEY_HAVE_CUDA

TEST_CASE("cuda ranker: GPU ranker tests (no CUDA build)") { MESSAGE("no CUDA build: the GPU ranker tests were not compiled"); }

#else

#include <cstring>
#include <numeric>

#include "avey/kernels/kernels.h"
#include "avey/ranker.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda_testing.h"

using namespace engine;
using testing::rel_diff;
using testing::kNoGpu;
using testing::Poison;

namespace {



template <class T> std::vector<T> host(const Tensor& t) { return t.to(Device::CPU).to_vector<T>(); }

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::CPU), y = b.to(Device::CPU);
  return x.dtype() == y.dtype() && x.numel() == y.numel() &&
         std::memcmp(x.raw(), y.raw(), size_t(x.numel()) * size_of(x.dtype())) == 0;
}

std::vector<int64_t> upto(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t(0));
  return v;
}

struct Sizes {
  int64_t B, n;
  std::vector<int64_t> queries;
  int64_t J, k;
};

}  // namespace

TEST_CASE("cuda ranker: selection, weights, P^T dH and the score gradient equal the CPU's" * doctest::skip(kNoGpu)) {
  Poison poison;
  Rng rng(31);
  const std::vector<Sizes> sizes = {
      {2, 9, upto(9), 9, 3},              // the model's queries, J > k
      {3, 8, {7, 2, 0, 5, 3}, 6, 4},      // queries out of order, some beyond J
      {2, 6, {5}, 5, 7},                  // one query, J < k (next_token_logits: {J})
      {1, 1, {0}, 0, 3},                  // no candidates: no scores at all
      {2, 40, upto(40), 40, 7},
      {1, 300, {299, 150, 7}, 299, 16},   // long rows: k passes over 299 candidates
      {2, 5, upto(5), 5, 0},              // k = 0
  };
  int runs = 0;
  for (const Sizes& z : sizes)
    for (int ranker = 0; ranker < 2; ++ranker)
      for (int weighting = 0; weighting < 2; ++weighting)
        for (const char* norm : {"max", "first"})
          for (int levels : {3, 0}) {
            avey::Config cfg;
            cfg.ranker = ranker == 1, cfg.split_weighting = weighting == 1, cfg.ranker_weight_norm = norm;
            cfg.top_k = z.k;
            const int64_t R = int64_t(z.queries.size()), K = z.k + 1, row = 6, total = z.B * R * K;
            INFO("B " << z.B << " n " << z.n << " R " << R << " J " << z.J << " k " << z.k << " ranker " << ranker
                      << " weighting " << weighting << " norm " << norm << " levels " << levels);
            // f32 scores around 3 (norms away from 0), with exact ties when levels > 0
            std::vector<double> s(size_t(z.B * R * z.J));
            for (double& x : s) x = 3.0 + (levels > 0 ? 0.5 * double(rng.below(uint64_t(levels))) : rng.normal());
            const bool has_scores = cfg.ranker && !s.empty();
            Tensor sc = has_scores ? Tensor::from(s, {z.B, R, z.J}).to(DType::F32) : Tensor();
            Tensor sg = has_scores ? sc.to(Device::CUDA) : Tensor();

            avey::ContextPlan pc = avey::select_contexts(cfg, z.B, z.n, z.queries, sc, z.J, Device::CPU);
            avey::ContextPlan pg = avey::select_contexts(cfg, z.B, z.n, z.queries, sg, z.J, Device::CUDA);
            REQUIRE(pg.split.is_cuda());
            CHECK(host<int32_t>(pg.split) == host<int32_t>(pc.split));
            CHECK(host<int32_t>(pg.score_index) == host<int32_t>(pc.score_index));
            CHECK(host<int32_t>(pg.norm_index) == host<int32_t>(pc.norm_index));
            CHECK(same_bits(pg.weight, pc.weight));
            CHECK(same_bits(pg.weight.to(DType::BF16), pc.weight.to(DType::BF16)));  // the mixed-precision column
            CHECK(pg.empty_slots == pc.empty_slots);
            CHECK(pg.weighted == pc.weighted);

            // build_contexts in f32, forward and backward from sum(out * w)
            Tensor xc = Tensor::randn({z.B * z.n, row}, rng, 1.0, DType::F32);
            Tensor w = Tensor::randn({total, row}, rng, 1.0, DType::F32);
            Tensor xg = xc.to(Device::CUDA);
            xc.requires_grad_();
            xg.requires_grad_();
            Tensor scc = has_scores ? sc.clone() : Tensor(), scg = has_scores ? sg.clone() : Tensor();
            if (has_scores) {
              scc.requires_grad_();
              scg.requires_grad_();
            }
            Tensor oc = avey::build_contexts(xc, scc, pc), og = avey::build_contexts(xg, scg, pg);
            CHECK(same_bits(og.detach(), oc.detach()));
            sum(mul(oc, w)).backward();
            sum(mul(og, w.to(Device::CUDA))).backward();
            CHECK(rel_diff(xg.grad(), xc.grad()) < 1e-5);
            if (pc.weighted) {
              REQUIRE(scg.grad().defined());
              CHECK(rel_diff(scg.grad(), scc.grad()) < 1e-5);
            } else if (has_scores) {
              CHECK_FALSE(scg.grad().defined());
            }

            // bf16 splits (mixed precision: scores stay f32): the GPU's bf16 product equals the
            // CPU's f32 product of the same bf16 values, rounded to bf16
            Tensor xb = xc.detach().to(DType::BF16);
            Tensor ob = avey::build_contexts(xb.to(Device::CUDA), sg, pg);
            Tensor ref = mul(gather_rows(xb.to(DType::F32), pc.split),
                             reshape(pc.weight, {total, 1}).to(DType::BF16).to(DType::F32))
                             .to(DType::BF16);
            CHECK(same_bits(ob, ref));
            ++runs;
          }
  CHECK(runs == 7 * 2 * 2 * 2 * 2);
}

TEST_CASE("cuda ranker: MaxSim scores and their sparse backward equal the CPU's" * doctest::skip(kNoGpu)) {
  Poison poison;
  Rng rng(41);
  const int64_t B = 3, S = 64, d = 256, J = 8;
  // the scores (the arg-max may differ where two similarities tie to f32 rounding: not the values)
  Tensor x = Tensor::randn({B, J * S, d}, rng);
  CHECK(rel_diff(avey::maxsim_scores(x.to(Device::CUDA), x.to(Device::CUDA), S).to(Device::CPU),
                 avey::maxsim_scores(x, x, S)) < 1e-5);
  // the backward kernel on the same arg-maxes: every index in range, some rows never chosen
  for (int64_t R : {8, 2}) {
    CAPTURE(R);
    Tensor q = Tensor::randn({B, R * S, d}, rng), c = Tensor::randn({B, J * S, d}, rng);
    Tensor g = Tensor::randn({B * R * S * J}, rng);
    std::vector<int32_t> am(size_t(B * R * S * J));
    for (size_t i = 0; i < am.size(); ++i) am[i] = int32_t((i * 7 + i / 5) % size_t(S / 2));
    Tensor a = Tensor::from(am, {int64_t(am.size())});
    Tensor gq = Tensor::empty(q.shape()), gc = Tensor::empty(c.shape());
    avey::kernels::cpu::maxsim_backward<float>({.batch = B, .rs = R * S, .js = J * S, .S = S, .d = d,
                                                .q = q.data<float>(), .c = c.data<float>(), .argmax = a.data<int32_t>(),
                                                .g = g.data<float>(), .dq = gq.data<float>(), .dc = gc.data<float>()});
    Tensor qd = q.to(Device::CUDA), cd = c.to(Device::CUDA), ad = a.to(Device::CUDA), gd = g.to(Device::CUDA);
    Tensor gqd = Tensor::empty(q.shape(), DType::F32, Device::CUDA), gcd = Tensor::empty(c.shape(), DType::F32, Device::CUDA);
    avey::kernels::cuda::maxsim_backward<float>({.batch = B, .rs = R * S, .js = J * S, .S = S, .d = d,
                                                 .q = qd.data<float>(), .c = cd.data<float>(),
                                                 .argmax = ad.data<int32_t>(), .g = gd.data<float>(),
                                                 .dq = gqd.data<float>(), .dc = gcd.data<float>()});
    CHECK(rel_diff(gqd.to(Device::CPU), gq) < 1e-6);
    CHECK(rel_diff(gcd.to(Device::CPU), gc) < 1e-6);
  }
}

#endif
