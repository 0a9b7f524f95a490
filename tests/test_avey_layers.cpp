// Avey's fused pieces against the same computation composed from engine primitives (forward and
// gradients, f64), plus an fp64 finite-difference check of the fused version: RMSNorm, the
// enricher's fused end, the tied head, the ranker. (The whole fused block against the composed
// one: tests/test_avey_block.cpp.)
#include <algorithm>
#include <functional>
#include <numeric>

#include "avey/activation.h"
#include "avey/contextualizer.h"
#include "avey/enricher.h"
#include "avey/enricher_ops.h"
#include "avey/head.h"
#include "avey/norm.h"
#include "avey/ranker.h"
#include "tests/testing.h"

using namespace engine;
using testing::check_gradients;
using testing::random_leaf;
using testing::rel_diff;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// A context plan's slots read on the host (the plan keeps them on the scores' device).
struct HostPlan {
  explicit HostPlan(const avey::ContextPlan& p)
      : split(p.split.to(Device::CPU).to_vector<int32_t>()),
        weight(p.weight.to(Device::CPU).to_vector<double>()),
        score_index(p.score_index.to(Device::CPU).to_vector<int32_t>()),
        norm_index(p.norm_index.to(Device::CPU).to_vector<int32_t>()),
        empty_slots(p.empty_slots),
        weighted(p.weighted) {}
  std::vector<int32_t> split;
  std::vector<double> weight;
  std::vector<int32_t> score_index, norm_index, empty_slots;
  bool weighted;
};

std::vector<Tensor> fresh_copies(const std::vector<Tensor>& xs) {
  std::vector<Tensor> out;
  for (const Tensor& x : xs) {
    if (!x.defined()) {
      out.push_back(x);
      continue;
    }
    Tensor c = x.detach().clone();
    if (x.requires_grad()) c.requires_grad_();
    out.push_back(c);
  }
  return out;
}

// Runs f on fresh copies of the inputs; returns the output and every input's gradient of sum(out * w).
std::pair<Tensor, std::vector<Tensor>> run(const Fn& f, const std::vector<Tensor>& inputs, uint64_t seed = 3) {
  std::vector<Tensor> xs = fresh_copies(inputs);
  Tensor out = f(xs);
  Rng rng(seed);
  Tensor w = Tensor::randn(out.shape(), rng, 1.0, DType::F64);
  sum(mul(out, w)).backward();
  std::vector<Tensor> grads;
  for (const Tensor& x : xs) grads.push_back(x.defined() && x.requires_grad() ? x.grad() : Tensor());
  return {out.detach(), grads};
}

// Fused and composed agree to ~1e-12 in f64 (forward and every gradient); the fused one passes gradcheck.
void check_fused(const Fn& fused, const Fn& composed, const std::vector<Tensor>& inputs, double tol = 1e-12,
                 bool finite_differences = true) {
  auto [yf, gf] = run(fused, inputs);
  auto [yc, gc] = run(composed, inputs);
  CHECK(rel_diff(yf, yc) < tol);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    INFO("input " << i);
    REQUIRE(gf[i].defined());
    REQUIRE(gc[i].defined());
    CHECK(rel_diff(gf[i], gc[i]) < tol);
  }
  if (finite_differences) check_gradients(fused, fresh_copies(inputs));
}

}  // namespace

TEST_CASE("avey layers: RMSNorm engine::rmsnorm == composed, gradcheck") {
  Rng rng(1);
  Tensor x = random_leaf({5, 7}, rng), g = random_leaf({7}, rng);
  check_fused([](auto& v) { return rmsnorm(v[0], v[1], 1e-10); },
              [](auto& v) { return avey::rms_norm_composed(v[0], v[1], 1e-10); }, {x, g});
  Tensor x3 = random_leaf({2, 3, 4}, rng), g3 = random_leaf({4}, rng);  // leading dims flatten to rows
  check_fused([](auto& v) { return rmsnorm(v[0], v[1], 1e-10); },
              [](auto& v) { return avey::rms_norm_composed(v[0], v[1], 1e-10); }, {x3, g3});
}

namespace {

// The enricher through the fused block's pieces, recorded as one node: P = y U^T, then
// enrich_split (bias, activation, all of Z in Z0 here) and its backward enrich_split_backward.
Tensor enricher_via_ops(const Tensor& y, const Tensor& u, const Tensor& b, avey::Activation act) {
  Tensor p, z;
  avey::EnrichedParts parts;
  const bool keep_p = avey::keeps_preactivation(act);
  {
    NoGrad no_grad;
    p = matmul(y, u, false, true);
    parts = avey::enrich_split(p, b, act, p.size(1), 0, Columns{}, keep_p, false, 0.0);
    z = parts.z0.clone();
  }
  if (!keep_p) p = Tensor();
  record(z, "test.enricher", {y, u, b}, [=](const Tensor& gz) -> std::vector<Tensor> {
    Tensor gb;
    const Tensor gp = avey::enrich_split_backward(p, parts, Columns{}, act, gz, Tensor(), Columns{}, &gb);
    return {matmul(gp, u), matmul(gp, y, true, false), gb};
  });
  return z;
}

}  // namespace

TEST_CASE("avey layers: the enricher's fused end == composed for every activation, gradcheck") {
  using avey::Activation;
  for (Activation a : {Activation::None, Activation::Relu, Activation::Relu2, Activation::Gelu, Activation::Silu}) {
    INFO("activation " << avey::name_of(a));
    Rng rng(2);
    Tensor y = random_leaf({6, 4}, rng, 0.05), u = random_leaf({10, 4}, rng, 0.05), b = random_leaf({10}, rng, 0.05);
    check_fused([a](auto& v) { return enricher_via_ops(v[0], v[1], v[2], a); },
                [a](auto& v) { return avey::enricher_composed(v[0], v[1], v[2], a); }, {y, u, b});
  }
}

TEST_CASE("avey layers: contextualizer keeps zero rows finite (epsilon inside the root)") {
  Tensor z0 = Tensor::zeros({1, 3, 2}, DType::F64);
  z0.requires_grad_();
  Tensor z1 = Tensor::full({1, 3, 2}, 1.0, DType::F64), v = Tensor::full({3, 3}, 1.0, DType::F64);
  Tensor c = avey::contextualizer_composed(z0, z1, v, true, avey::Activation::None);
  sum(c).backward();
  for (double g : z0.grad().to_vector<double>()) CHECK(std::isfinite(g));
}

TEST_CASE("avey layers: attention contextualizer is causal and gradient-checked") {
  Rng rng(4);
  Tensor z0 = random_leaf({2, 4, 4}, rng), z1 = random_leaf({2, 4, 4}, rng);
  check_gradients([](auto& x) { return avey::attention_contextualizer(x[0], x[1], 2, avey::Activation::None); },
                  {z0, z1});
  // causality: changing the last row leaves the earlier rows' outputs unchanged
  NoGrad ng;
  Tensor a = avey::attention_contextualizer(z0, z1, 2, avey::Activation::None);
  Tensor z0b = z0.detach().clone();
  z0b.view(3 * 4, {4}).fill_(5.0);  // context 0, row 3
  Tensor b = avey::attention_contextualizer(z0b, z1, 2, avey::Activation::None);
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (int i = 0; i < 12; ++i) CHECK(va[size_t(i)] == vb[size_t(i)]);
  CHECK(va[12] != vb[12]);
}

TEST_CASE("avey layers: tied head + fused cross-entropy == composed, in chunks, with ignored rows") {
  Rng rng(6);
  Tensor h = random_leaf({7, 4}, rng), e = random_leaf({11, 4}, rng);
  Tensor t = Tensor::from(std::vector<int32_t>{3, -100, 0, 10, 5, -100, 7}, {7});
  for (int64_t chunk : {int64_t(11), int64_t(33), int64_t(1) << 20}) {  // 1, 3 and all rows per chunk
    INFO("chunk elements " << chunk);
    check_fused([t, chunk](auto& x) { return avey::tied_head_loss(x[0], x[1], t, chunk); },
                [t](auto& x) { return avey::tied_head_loss_composed(x[0], x[1], t); }, {h, e});
  }
}

TEST_CASE("avey ranker: MaxSim scores equal a plain loop") {
  Rng rng(7);
  const int64_t B = 2, S = 3, n = 4, d = 5;
  Tensor x = random_leaf({B, n * S, d}, rng);
  Tensor s = avey::maxsim_scores(x, x, S);
  REQUIRE(s.shape() == Shape{B, n, n});
  auto xv = x.to_vector<double>(), sv = s.to_vector<double>();
  auto row = [&](int64_t b, int64_t r) {
    std::vector<double> v(xv.begin() + (b * n * S + r) * d, xv.begin() + (b * n * S + r + 1) * d);
    double nn = 0;
    for (double a : v) nn += a * a;
    for (double& a : v) a /= std::sqrt(nn) + 1e-8;
    return v;
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double score = 0;
        for (int64_t t = 0; t < S; ++t) {
          double best = -1e300;
          for (int64_t u = 0; u < S; ++u) {
            auto a = row(b, i * S + t), c = row(b, j * S + u);
            double dot = 0;
            for (int64_t q = 0; q < d; ++q) dot += a[size_t(q)] * c[size_t(q)];
            best = std::max(best, dot);
          }
          score += best;
        }
        CHECK(std::abs(sv[size_t((b * n + i) * n + j)] - score) < 1e-12);
      }
  check_gradients([S](auto& v) { return avey::maxsim_scores(v[0], v[0], S); }, {x});
  // other query and candidate rows (R = 2 splits against J = 3), and against the composition the
  // fused op replaces: the dense product, max over each split's rows, then the sum over t
  Tensor q = random_leaf({B, 2 * S, d}, rng), c = random_leaf({B, 3 * S, d}, rng);
  check_gradients([S](auto& v) { return avey::maxsim_scores(v[0], v[1], S); }, {q, c});
  check_fused([S](auto& v) { return avey::maxsim_scores(v[0], v[1], S); },
              [S](auto& v) {
                Tensor qn = l2norm_rows(v[0], avey::kRankerEps, kernels::NormEps::Outside);
                Tensor cn = l2norm_rows(v[1], avey::kRankerEps, kernels::NormEps::Outside);
                Tensor best = row_max(reshape(matmul(qn, cn, false, true), {B * 2 * S * 3, S}));
                return reshape(row_sums(transpose(reshape(best, {B * 2, S, 3}))), {B, 2, 3});
              },
              {q, c});
}

TEST_CASE("avey ranker: selection, order, ties, weights (max and first), window") {
  avey::Config cfg;
  cfg.top_k = 2;
  // one sequence, 4 splits; scores[i][j] (only j < i matter)
  std::vector<double> s = {0, 0, 0, 0,  //
                           5, 0, 0, 0,  //
                           1, 2, 0, 0,  //
                           3, 1, 3, 0};
  const HostPlan plan(avey::plan_contexts(cfg, 1, 4, {0, 1, 2, 3}, s, 4));
  const int64_t K = 3;
  auto slot = [&](int64_t i, int64_t q) { return size_t(i * K + q); };
  // split 0: two empty slots, then itself
  CHECK(plan.weight[slot(0, 0)] == 0);
  CHECK(plan.weight[slot(0, 1)] == 0);
  CHECK(plan.split[slot(0, 2)] == 0);
  CHECK(plan.weight[slot(0, 2)] == 1);
  // split 1: one empty slot, split 0 with w = 5/(5+eps)
  CHECK(plan.weight[slot(1, 0)] == 0);
  CHECK(plan.split[slot(1, 1)] == 0);
  CHECK(plan.weight[slot(1, 1)] == doctest::Approx(5.0 / (5.0 + 1e-8)).epsilon(1e-15));
  // split 2: both earlier splits, ascending; norm = max = 2
  CHECK(plan.split[slot(2, 0)] == 0);
  CHECK(plan.split[slot(2, 1)] == 1);
  CHECK(plan.weight[slot(2, 0)] == doctest::Approx(1.0 / (2.0 + 1e-8)));
  CHECK(plan.norm_index[slot(2, 0)] == 2 * 4 + 1);
  // split 3: scores 3, 1, 3 -> tie between j = 0 and j = 2 (both kept), j = 1 dropped; the norm's
  // gradient goes to the earliest arg-max (j = 0)
  CHECK(plan.split[slot(3, 0)] == 0);
  CHECK(plan.split[slot(3, 1)] == 2);
  CHECK(plan.norm_index[slot(3, 1)] == 3 * 4 + 0);
  // a tie at the cut: k = 1 keeps the lower j
  avey::Config one = cfg;
  one.top_k = 1;
  const HostPlan p1(avey::plan_contexts(one, 1, 4, {3}, {3, 1, 3, 0}, 4));
  CHECK(p1.split[0] == 0);
  // "first": the earliest selected split's score
  avey::Config first = cfg;
  first.ranker_weight_norm = "first";
  const HostPlan pf(avey::plan_contexts(first, 1, 4, {0, 1, 2, 3}, s, 4));
  CHECK(pf.weight[slot(2, 0)] == doctest::Approx(1.0 / (1.0 + 1e-8)));
  CHECK(pf.weight[slot(2, 1)] == doctest::Approx(2.0 / (1.0 + 1e-8)));
  // no weighting: 1; no ranker: the k splits right before, unweighted
  avey::Config flat = cfg;
  flat.split_weighting = false;
  const HostPlan pw(avey::plan_contexts(flat, 1, 4, {0, 1, 2, 3}, s, 4));
  CHECK(pw.weight[slot(3, 0)] == 1.0);
  CHECK_FALSE(pw.weighted);
  avey::Config window = cfg;
  window.ranker = false;
  const HostPlan pn(avey::plan_contexts(window, 1, 4, {0, 1, 2, 3}, {}, 4));
  CHECK(pn.split[slot(3, 0)] == 1);
  CHECK(pn.split[slot(3, 1)] == 2);
  CHECK(pn.weight[slot(3, 0)] == 1.0);
  CHECK(pn.weight[slot(1, 0)] == 0.0);
}

namespace {

// The selection as the host did it before it moved into the kernels (the reference): per
// context a stable sort of the candidates by descending score, the first k kept, sorted by j.
struct OldPlan {
  std::vector<int32_t> split, score_index, norm_index, empty_slots;
  std::vector<double> weight, norm;
  bool weighted = false;
};

OldPlan old_plan(const avey::Config& cfg, int64_t B, int64_t n, const std::vector<int64_t>& query_split,
                 const std::vector<double>& scores, int64_t J) {
  OldPlan p;
  const int64_t R = int64_t(query_split.size()), k = cfg.top_k, K = k + 1;
  const size_t total = size_t(B * R * K);
  p.split.assign(total, 0);
  p.weight.assign(total, 0.0);
  p.score_index.assign(total, -1);
  p.norm_index.assign(total, -1);
  p.norm.assign(total, 1.0);
  p.empty_slots.assign(size_t(B * R), 0);
  const bool weighted = cfg.ranker && cfg.split_weighting;
  std::vector<int64_t> cand, chosen;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t q = query_split[size_t(r)];
      const int64_t base = (b * R + r) * K;
      const int64_t srow = (b * R + r) * J;
      chosen.clear();
      if (cfg.ranker) {
        cand.resize(size_t(std::max<int64_t>(0, std::min(q, J))));
        std::iota(cand.begin(), cand.end(), 0);
        std::stable_sort(cand.begin(), cand.end(),
                         [&](int64_t a, int64_t c) { return scores[size_t(srow + a)] > scores[size_t(srow + c)]; });
        chosen.assign(cand.begin(), cand.begin() + std::min<int64_t>(int64_t(cand.size()), k));
        std::sort(chosen.begin(), chosen.end());
      } else {
        for (int64_t j = std::max<int64_t>(0, q - k); j < q; ++j) chosen.push_back(j);
      }
      const int64_t rsel = int64_t(chosen.size());
      p.empty_slots[size_t(b * R + r)] = int32_t(k - rsel);
      int64_t norm_j = -1;
      if (weighted && rsel > 0) {
        norm_j = chosen[0];
        if (cfg.ranker_weight_norm == "max")
          for (int64_t j : chosen)
            if (scores[size_t(srow + j)] > scores[size_t(srow + norm_j)]) norm_j = j;
      }
      for (int64_t s = 0; s < rsel; ++s) {
        const size_t slot = size_t(base + (k - rsel) + s);
        const int64_t j = chosen[size_t(s)];
        p.split[slot] = int32_t(b * n + j);
        if (weighted) {
          const double norm = scores[size_t(srow + norm_j)] + avey::kRankerEps;
          p.weight[slot] = scores[size_t(srow + j)] / norm;
          p.score_index[slot] = int32_t(srow + j);
          p.norm_index[slot] = int32_t(srow + norm_j);
          p.norm[slot] = norm;
          p.weighted = true;
        } else {
          p.weight[slot] = 1.0;
        }
      }
      const size_t cur = size_t(base + k);
      p.split[cur] = int32_t(b * n + q);
      p.weight[cur] = 1.0;
    }
  }
  return p;
}

// Random scores with many exact ties: `levels` > 0 draws from {0, 0.5, ..., (levels-1)/2}
// (negative ones too), 0 draws normals.
std::vector<double> tied_scores(size_t count, Rng& rng, int levels) {
  std::vector<double> v(count);
  for (double& x : v)
    x = levels > 0 ? 0.5 * (double(rng.below(uint64_t(levels))) - (levels > 3 ? 1.0 : 0.0)) : rng.normal();
  return v;
}

struct PlanCase {
  int64_t B, n;
  std::vector<int64_t> queries;
  int64_t J, k;
};

std::vector<PlanCase> plan_cases() {
  return {
      {1, 4, {0, 1, 2, 3}, 4, 2},               // the model's queries, J = n
      {2, 9, {0, 1, 2, 3, 4, 5, 6, 7, 8}, 9, 3},  // J > k
      {2, 6, {5}, 5, 7},                          // one query (next_token_logits: {J}), J < k
      {3, 8, {7, 2, 0, 5, 3}, 6, 4},              // queries out of order, some beyond J
      {2, 12, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 12, 1},
      {1, 3, {0, 1, 2}, 3, 0},                    // k = 0: only the split itself
      {2, 20, {19, 3, 11}, 19, 5},
  };
}

std::vector<avey::Config> plan_configs() {
  std::vector<avey::Config> out;
  for (int ranker = 0; ranker < 2; ++ranker)
    for (int weighting = 0; weighting < 2; ++weighting)
      for (const char* norm : {"max", "first"}) {
        avey::Config c;
        c.ranker = ranker == 1, c.split_weighting = weighting == 1, c.ranker_weight_norm = norm;
        out.push_back(c);
      }
  return out;
}

}  // namespace

TEST_CASE("avey ranker: the selection kernel equals the old host selection (ties, ablations, query lists)") {
  Rng rng(21);
  int compared = 0;
  for (const PlanCase& pc : plan_cases())
    for (avey::Config cfg : plan_configs())
      for (int levels : {2, 3, 7, 0}) {
        cfg.top_k = pc.k;
        const int64_t R = int64_t(pc.queries.size());
        INFO("B " << pc.B << " n " << pc.n << " R " << R << " J " << pc.J << " k " << pc.k << " ranker " << cfg.ranker
                  << " weighting " << cfg.split_weighting << " norm " << cfg.ranker_weight_norm
                  << " levels " << levels);
        std::vector<double> s = tied_scores(size_t(pc.B * R * pc.J), rng, levels);
        const OldPlan want = old_plan(cfg, pc.B, pc.n, pc.queries, s, pc.J);
        for (DType dt : {DType::F64, DType::F32}) {
          // f32 scores: the reference gets the same f32 values (ties stay ties)
          std::vector<double> sd = Tensor::from(s, {int64_t(s.size())}).to(dt).to(DType::F64).to_vector<double>();
          const OldPlan ref = dt == DType::F64 ? want : old_plan(cfg, pc.B, pc.n, pc.queries, sd, pc.J);
          Tensor sc = cfg.ranker ? Tensor::from(sd, {pc.B, R, pc.J}).to(dt) : Tensor();
          const HostPlan got(avey::select_contexts(cfg, pc.B, pc.n, pc.queries, sc, pc.J, Device::CPU));
          CHECK(got.split == ref.split);
          CHECK(got.weight == ref.weight);  // bit for bit
          CHECK(got.score_index == ref.score_index);
          CHECK(got.norm_index == ref.norm_index);
          CHECK(got.empty_slots == ref.empty_slots);
          CHECK(got.weighted == ref.weighted);
          ++compared;
        }
        if (cfg.ranker) {  // the host entry the tests use
          const HostPlan host(avey::plan_contexts(cfg, pc.B, pc.n, pc.queries, s, pc.J));
          CHECK(host.split == want.split);
          CHECK(host.weight == want.weight);
        }
      }
  CHECK(compared == 7 * 8 * 4 * 2);
}

TEST_CASE("avey ranker: build_contexts' forward, P^T dH and score gradient equal the old host computation") {
  Rng rng(22);
  for (const PlanCase& pc : plan_cases())
    for (avey::Config cfg : plan_configs())
      for (DType dt : {DType::F64, DType::F32}) {
        if (!cfg.ranker || pc.k == 0) continue;
        cfg.top_k = pc.k;
        const int64_t R = int64_t(pc.queries.size()), K = pc.k + 1, row = 5;
        INFO("B " << pc.B << " n " << pc.n << " R " << R << " J " << pc.J << " k " << pc.k << " weighting "
                  << cfg.split_weighting << " norm " << cfg.ranker_weight_norm << " " << name_of(dt));
        std::vector<double> s = tied_scores(size_t(pc.B * R * pc.J), rng, 5);
        for (double& x : s) x += 3.0;  // norms away from 0
        Tensor scores = Tensor::from(s, {pc.B, R, pc.J}).to(dt);
        scores.requires_grad_();
        Tensor splits = Tensor::randn({pc.B * pc.n, row}, rng, 1.0, dt);
        splits.requires_grad_();
        Tensor w = Tensor::randn({pc.B * R * K, row}, rng, 1.0, dt);
        auto plan = avey::select_contexts(cfg, pc.B, pc.n, pc.queries, scores, pc.J, Device::CPU);
        Tensor out = avey::build_contexts(splits, scores, plan);
        sum(mul(out, w)).backward();

        // the old host computation, from the old plan on the same scores
        const OldPlan old = old_plan(cfg, pc.B, pc.n, pc.queries, scores.to(DType::F64).to_vector<double>(), pc.J);
        const int64_t total = pc.B * R * K, RK = R * K;
        Tensor index = Tensor::from(old.split, {total});
        Tensor fwd = mul(gather_rows(splits.detach(), index), Tensor::from(old.weight, {total, 1}).to(dt));
        CHECK(rel_diff(out.detach(), fwd) == 0.0);
        std::vector<double> p(size_t(pc.B * RK * pc.n), 0.0);
        for (int64_t b = 0; b < pc.B; ++b)
          for (int64_t q = 0; q < RK; ++q) {
            const size_t slot = size_t(b * RK + q);
            if (old.weight[slot] != 0.0)
              p[size_t((b * RK + q) * pc.n + (old.split[slot] - b * pc.n))] += old.weight[slot];
          }
        Tensor pm = Tensor::from(p, {pc.B, RK, pc.n}).to(dt);
        Tensor gx = reshape(matmul(pm, reshape(w, {pc.B, RK, row}), true, false), {pc.B * pc.n, row});
        CHECK(rel_diff(splits.grad(), gx) == 0.0);
        if (cfg.split_weighting) {
          // dw_s = <dH_s, X_{j_s}> (the kernel adds in T, in its own order: compared to a tolerance)
          std::vector<double> dw =
              row_sums(mul(w.to(DType::F64), gather_rows(splits.detach().to(DType::F64), index))).to_vector<double>();
          std::vector<double> ds(s.size(), 0.0), mag(s.size(), 0.0);  // mag: the terms' sizes (they cancel)
          for (size_t q = 0; q < dw.size(); ++q) {
            if (old.score_index[q] < 0) continue;
            ds[size_t(old.score_index[q])] += dw[q] / old.norm[q];
            ds[size_t(old.norm_index[q])] -= dw[q] * old.weight[q] / old.norm[q];
            mag[size_t(old.score_index[q])] += std::abs(dw[q] / old.norm[q]);
            mag[size_t(old.norm_index[q])] += std::abs(dw[q] * old.weight[q] / old.norm[q]);
          }
          REQUIRE(scores.grad().defined());
          const std::vector<double> got = scores.grad().to(DType::F64).to_vector<double>();
          const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
          for (size_t i = 0; i < ds.size(); ++i) CHECK(std::abs(got[i] - ds[i]) <= tol * (mag[i] + 1e-30));
        } else {
          CHECK_FALSE(scores.grad().defined());
        }
      }
}

TEST_CASE("avey ranker: fused contexts == composed (max, first, unweighted, window), gradcheck through X") {
  const int64_t B = 2, S = 3, n = 4, d = 3;
  for (int variant = 0; variant < 4; ++variant) {
    avey::Config cfg;
    cfg.top_k = 2;
    cfg.split_size = S;
    if (variant == 1) cfg.ranker_weight_norm = "first";
    if (variant == 2) cfg.split_weighting = false;
    if (variant == 3) cfg.ranker = false;
    INFO("variant " << variant);
    auto contexts = [cfg](bool fused) {
      return [cfg, fused](const std::vector<Tensor>& v) {
        Tensor x3 = v[0];
        std::vector<int64_t> queries{0, 1, 2, 3};
        Tensor scores;
        if (cfg.ranker) scores = avey::maxsim_scores(x3, x3, S);
        auto plan = avey::select_contexts(cfg, B, n, queries, scores, n, x3.device());
        Tensor splits = reshape(x3, {B * n, S * d});
        return fused ? avey::build_contexts(splits, scores, plan) : avey::build_contexts_composed(splits, scores, plan);
      };
    };
    Rng rng(8);
    Tensor x = random_leaf({B, n * S, d}, rng);
    check_fused(contexts(true), contexts(false), {x}, 1e-12);
  }
}
