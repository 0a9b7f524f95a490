// Every fused Avey layer against the same computation composed from engine primitives (forward
// and gradients, f64), plus an fp64 finite-difference check of the fused version.
#include <functional>

#include "avey/activation.h"
#include "avey/contextualizer.h"
#include "avey/enricher.h"
#include "avey/fuser.h"
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

TEST_CASE("avey layers: RMSNorm fused == composed == engine::rmsnorm, gradcheck") {
  Rng rng(1);
  Tensor x = random_leaf({5, 7}, rng), g = random_leaf({7}, rng);
  check_fused([](auto& v) { return avey::rms_norm(v[0], v[1], 1e-10); },
              [](auto& v) { return avey::rms_norm_composed(v[0], v[1], 1e-10); }, {x, g});
  check_fused([](auto& v) { return avey::rms_norm(v[0], v[1], 1e-10); },
              [](auto& v) { return rmsnorm(v[0], v[1], 1e-10); }, {x, g}, 1e-12, false);
  Tensor x3 = random_leaf({2, 3, 4}, rng), g3 = random_leaf({4}, rng);  // leading dims flatten to rows
  check_fused([](auto& v) { return avey::rms_norm(v[0], v[1], 1e-10); },
              [](auto& v) { return avey::rms_norm_composed(v[0], v[1], 1e-10); }, {x3, g3});
}

TEST_CASE("avey layers: enricher fused == composed for every activation, gradcheck") {
  using avey::Activation;
  for (Activation a : {Activation::None, Activation::Relu, Activation::Relu2, Activation::Gelu, Activation::Silu}) {
    INFO("activation " << avey::name_of(a));
    Rng rng(2);
    Tensor y = random_leaf({6, 4}, rng, 0.05), u = random_leaf({10, 4}, rng, 0.05), b = random_leaf({10}, rng, 0.05);
    check_fused([a](auto& v) { return avey::enricher(v[0], v[1], v[2], a); },
                [a](auto& v) { return avey::enricher_composed(v[0], v[1], v[2], a); }, {y, u, b});
  }
}

TEST_CASE("avey layers: contextualizer fused == composed (dynamic, static, activations), gradcheck") {
  using avey::Activation;
  struct Case {
    bool dynamic;
    Activation act;
  };
  for (Case c : {Case{true, Activation::None}, Case{false, Activation::None}, Case{true, Activation::Gelu},
                 Case{true, Activation::Relu2}, Case{false, Activation::Silu}}) {
    INFO("dynamic " << c.dynamic << " activation " << avey::name_of(c.act));
    Rng rng(3);
    Tensor z0 = random_leaf({3, 5, 4}, rng), z1 = random_leaf({3, 5, 4}, rng), v = random_leaf({5, 5}, rng);
    check_fused([c](auto& x) { return avey::contextualizer(x[0], x[1], x[2], c.dynamic, c.act); },
                [c](auto& x) { return avey::contextualizer_composed(x[0], x[1], x[2], c.dynamic, c.act); },
                {z0, z1, v});
  }
}

TEST_CASE("avey layers: contextualizer keeps zero rows finite (epsilon inside the root)") {
  Tensor z0 = Tensor::zeros({1, 3, 2}, DType::F64);
  z0.requires_grad_();
  Tensor z1 = Tensor::full({1, 3, 2}, 1.0, DType::F64), v = Tensor::full({3, 3}, 1.0, DType::F64);
  Tensor c = avey::contextualizer(z0, z1, v, true, avey::Activation::None);
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

TEST_CASE("avey layers: fuser fused == composed, with and without bypass, gradcheck") {
  Rng rng(5);
  Tensor c = random_leaf({6, 3}, rng), zh = random_leaf({6, 5}, rng), o = random_leaf({4, 8}, rng),
         b = random_leaf({4}, rng);
  check_fused([](auto& x) { return avey::fuser(x[0], x[1], x[2], x[3]); },
              [](auto& x) { return avey::fuser_composed(x[0], x[1], x[2], x[3]); }, {c, zh, o, b});
  Tensor o2 = random_leaf({4, 3}, rng);
  check_fused([](auto& x) { return avey::fuser(x[0], Tensor(), x[1], x[2]); },
              [](auto& x) { return avey::fuser_composed(x[0], Tensor(), x[1], x[2]); }, {c, o2, b});
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
}

TEST_CASE("avey ranker: selection, order, ties, weights (max and first), window") {
  avey::Config cfg;
  cfg.top_k = 2;
  // one sequence, 4 splits; scores[i][j] (only j < i matter)
  std::vector<double> s = {0, 0, 0, 0,  //
                           5, 0, 0, 0,  //
                           1, 2, 0, 0,  //
                           3, 1, 3, 0};
  auto plan = avey::plan_contexts(cfg, 1, 4, {0, 1, 2, 3}, s, 4);
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
  auto p1 = avey::plan_contexts(one, 1, 4, {3}, {3, 1, 3, 0}, 4);
  CHECK(p1.split[0] == 0);
  // "first": the earliest selected split's score
  avey::Config first = cfg;
  first.ranker_weight_norm = "first";
  auto pf = avey::plan_contexts(first, 1, 4, {0, 1, 2, 3}, s, 4);
  CHECK(pf.weight[slot(2, 0)] == doctest::Approx(1.0 / (1.0 + 1e-8)));
  CHECK(pf.weight[slot(2, 1)] == doctest::Approx(2.0 / (1.0 + 1e-8)));
  // no weighting: 1; no ranker: the k splits right before, unweighted
  avey::Config flat = cfg;
  flat.split_weighting = false;
  auto pw = avey::plan_contexts(flat, 1, 4, {0, 1, 2, 3}, s, 4);
  CHECK(pw.weight[slot(3, 0)] == 1.0);
  CHECK_FALSE(pw.weighted());
  avey::Config window = cfg;
  window.ranker = false;
  auto pn = avey::plan_contexts(window, 1, 4, {0, 1, 2, 3}, {}, 4);
  CHECK(pn.split[slot(3, 0)] == 1);
  CHECK(pn.split[slot(3, 1)] == 2);
  CHECK(pn.weight[slot(3, 0)] == 1.0);
  CHECK(pn.weight[slot(1, 0)] == 0.0);
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
        std::vector<double> host;
        if (cfg.ranker) {
          scores = avey::maxsim_scores(x3, x3, S);
          host = avey::host_doubles(scores);
        }
        auto plan = avey::plan_contexts(cfg, B, n, queries, host, n);
        Tensor splits = reshape(x3, {B * n, S * d});
        return fused ? avey::build_contexts(splits, scores, plan) : avey::build_contexts_composed(splits, scores, plan);
      };
    };
    Rng rng(8);
    Tensor x = random_leaf({B, n * S, d}, rng);
    check_fused(contexts(true), contexts(false), {x}, 1e-12);
  }
}
