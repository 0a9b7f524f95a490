// avey::fused_block (the whole block body with its RMSNorm and residual as one op, avey/block.h)
// equals avey::composed_block (the layers recorded op by op: rms_norm_composed, enricher,
// column split, contextualizer, fuser), and avey::fused_final_block equals fused_block's
// current-split rows, forward and backward, in f64 on the CPU, for the configs that change their
// code paths; plus an f64 finite-difference check of each; both on packed contexts
// (avey/packing.h) equal their unpacked selves on the contexts the packing stands for. And the
// enricher kernel's row norm of Z0 against plain loops.
#include <algorithm>
#include <cmath>
#include <functional>

#include "avey/block.h"
#include "avey/kernels/kernels.h"
#include "kernels/elementwise_math.h"
#include "tests/testing.h"

using namespace engine;
using testing::random_leaf;
using testing::rel_diff;

namespace {

// The block's weights from the inputs: norm gain, U, b, V, O, b_o (x[6] is the block input h).
avey::BlockWeights weights(const std::vector<Tensor>& x) { return {x[0], Tensor(), x[1], x[2], x[3], x[4], x[5]}; }

struct Variant {
  const char* name;
  void (*set)(avey::Config&);
};
// The configs that change the block's code paths.
std::vector<Variant> variants() {
  return {
      {"default", [](avey::Config&) {}},
      {"not dynamic", [](avey::Config& c) { c.dynamic = false; }},
      {"no enricher activation", [](avey::Config& c) { c.enricher_activation = avey::Activation::None; }},
      {"enricher relu", [](avey::Config& c) { c.enricher_activation = avey::Activation::Relu; }},
      {"enricher silu, contextualizer relu2", [](avey::Config& c) {
         c.enricher_activation = avey::Activation::Silu, c.contextualizer_activation = avey::Activation::Relu2;
       }},
      {"gelu, contextualizer silu", [](avey::Config& c) {
         c.enricher_activation = avey::Activation::Gelu, c.contextualizer_activation = avey::Activation::Silu;
       }},
      {"no bypass", [](avey::Config& c) { c.tail_proportion = 1.0; }},
      {"e3 p0.3", [](avey::Config& c) { c.expansion_factor = 3, c.tail_proportion = 0.3; }},
  };
}

// A one-block config (d 6, S 2) with the variant's switches.
avey::Config block_config(const Variant& v, int64_t top_k) {
  avey::Config cfg;
  cfg.vocab_size = 11, cfg.d_embed = 6, cfg.n_layers = 1, cfg.split_size = 2, cfg.top_k = top_k;
  v.set(cfg);
  cfg.validate();
  return cfg;
}

// The block's inputs: norm gain, U, b, V, O, b_o, and (x[6]) the residual input h, [rows, d].
std::vector<Tensor> block_inputs(const avey::Config& cfg, int64_t rows, Rng& rng) {
  const int64_t C = cfg.context_rows(), d = cfg.d_embed, m = cfg.expanded_width();
  return {random_leaf({d}, rng),          random_leaf({m, d}, rng),
          random_leaf({m}, rng),          random_leaf({C, C}, rng),
          random_leaf({d, cfg.fuser_in()}, rng), random_leaf({d}, rng),
          random_leaf({rows, d}, rng, 0.05)};
}

// N contexts with `pad` padding rows each (all zero: the [N*C] layout).
avey::Packing packing(const avey::Config& cfg, const std::vector<int64_t>& pad) {
  return avey::make_packing(cfg.split_size, cfg.context_rows(), pad, Device::CPU);
}
avey::Packing unpacked(const avey::Config& cfg, int64_t N) { return packing(cfg, std::vector<int64_t>(size_t(N), 0)); }

// Forward and every input's gradient of a and b (same inputs x) agree, for a random weighting of the output.
void check_same(const std::function<Tensor(const std::vector<Tensor>&)>& fa,
                const std::function<Tensor(const std::vector<Tensor>&)>& fb, std::vector<Tensor>& x, Rng& rng) {
  Tensor a = fa(x), b = fb(x);
  CHECK(rel_diff(a, b) < 1e-12);
  Tensor w = random_leaf(a.shape(), rng).detach();
  std::vector<Tensor> ga, gb;
  sum(mul(a, w)).backward();
  for (Tensor& t : x) ga.push_back(t.grad().clone()), t.zero_grad();
  sum(mul(b, w)).backward();
  for (Tensor& t : x) gb.push_back(t.grad().clone()), t.zero_grad();
  for (size_t i = 0; i < x.size(); ++i) {
    CAPTURE(i);
    CHECK(rel_diff(ga[i], gb[i]) < 1e-10);
  }
}

}  // namespace

TEST_CASE("fused_block equals the composed block (f64), and passes a gradient check") {
  for (const Variant& v : variants()) {
    CAPTURE(v.name);
    const avey::Config cfg = block_config(v, 1);
    const int64_t N = 2;
    Rng rng(3);
    std::vector<Tensor> x = block_inputs(cfg, N * cfg.context_rows(), rng);
    auto fused = [&](const std::vector<Tensor>& in) {
      return avey::fused_block(in[6], weights(in), cfg, unpacked(cfg, N));
    };
    auto composed = [&](const std::vector<Tensor>& in) {
      return avey::composed_block(in[6], weights(in), cfg, unpacked(cfg, N));
    };
    check_same(fused, composed, x, rng);
    if (cfg.enricher_activation != avey::Activation::None)  // relu^2 has a kink at 0; inputs stay away from it
      testing::check_gradients(fused, x);
  }
}

TEST_CASE("fused_final_block equals fused_block's current-split rows (f64), and passes a gradient check") {
  for (const Variant& v : variants()) {
    CAPTURE(v.name);
    const avey::Config cfg = block_config(v, 2);
    const int64_t N = 3, C = cfg.context_rows(), S = cfg.split_size;
    Rng rng(5);
    std::vector<Tensor> x = block_inputs(cfg, N * C, rng);
    std::vector<int32_t> current;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) current.push_back(int32_t(n * C + C - S + s));
    auto final_block = [&](const std::vector<Tensor>& in) {
      return avey::fused_final_block(in[6], weights(in), cfg, unpacked(cfg, N));
    };
    auto full_block = [&](const std::vector<Tensor>& in) {
      Tensor all = avey::fused_block(in[6], weights(in), cfg, unpacked(cfg, N));
      return gather_rows(all, Tensor::from(current, {N * S}));
    };
    CHECK(final_block(x).shape() == Shape{N * S, cfg.d_embed});
    check_same(final_block, full_block, x, rng);
    if (cfg.enricher_activation != avey::Activation::None) testing::check_gradients(final_block, x);
  }
}

// Packed contexts: padding rows 0..P_n-1 of context n are packed rows 0..P_n-1, shared. The
// packed bodies must equal the unpacked ones on the contexts gathered from the packed rows
// (avey::to_contexts), which hold every context's padding rows: the outputs the packed layout
// keeps (avey::to_packed; the final block keeps the current splits either way) and every input's
// gradient, which sums a padding row's gradient over the contexts that read it.
TEST_CASE("fused_block and fused_final_block on packed contexts equal them unpacked (f64)") {
  const std::vector<int64_t> pad{4, 2, 0, 4};  // k = 2, S = 2: C = 6; contexts 0 and 3 share 4 padding rows
  for (const Variant& v : variants()) {
    CAPTURE(v.name);
    const avey::Config cfg = block_config(v, 2);
    const int64_t N = int64_t(pad.size());
    const avey::Packing pk = packing(cfg, pad), flat = unpacked(cfg, N);
    CHECK(pk.packed());
    CHECK(pk.rows == 4 + (2 + 4 + 6 + 2));
    Rng rng(7);
    std::vector<Tensor> x = block_inputs(cfg, pk.rows, rng);
    auto body = [&](const avey::Packing& p, const Tensor& h, const std::vector<Tensor>& in, bool final_block) {
      return final_block ? avey::fused_final_block(h, weights(in), cfg, p) : avey::fused_block(h, weights(in), cfg, p);
    };
    for (bool final_block : {false, true}) {
      CAPTURE(final_block);
      auto packed = [&](const std::vector<Tensor>& in) { return body(pk, in[6], in, final_block); };
      auto reference = [&](const std::vector<Tensor>& in) {
        Tensor out = body(flat, avey::to_contexts(in[6], pk), in, final_block);
        return final_block ? out : avey::to_packed(out, pk);
      };
      check_same(packed, reference, x, rng);
    }
  }
}

// bias_act_split with zn: p += b, z = f(p) split into [z0 | z1 | z2] (z2's rows ld2 = w2 + 2
// apart, the gaps untouched), and z0's rows normalised for the cosine (zn = z0 / sqrt(|z0 row|^2
// + eps), denom = that root), against plain loops in f64.
TEST_CASE("bias_act_split: bias, activation, split and z0's row norm against plain loops (f64)") {
  struct Case {
    int64_t rows, w0, w1, w2;
    bool has_act;
    kernels::Unary f;
  };
  const double eps = 1e-6;
  for (const Case& k : {Case{5, 3, 4, 6, true, kernels::Unary::Relu2}, Case{7, 8, 8, 0, true, kernels::Unary::Gelu},
                        Case{4, 5, 2, 3, false, kernels::Unary::Relu}}) {
    CAPTURE(k.w0);
    const int64_t cols = k.w0 + k.w1 + k.w2;
    Rng rng(5);
    Tensor p = Tensor::randn({k.rows, cols}, rng, 1.0, DType::F64), bias = Tensor::randn({cols}, rng, 1.0, DType::F64);
    const std::vector<double> p_in = p.to_vector<double>(), b = bias.to_vector<double>();
    const int64_t ld2 = k.w2 + 2;
    std::vector<double> z0(size_t(k.rows * k.w0)), z1(size_t(k.rows * k.w1)), z2(size_t(k.rows * ld2), 7.0),
        zn(z0.size()), denom(size_t(k.rows));
    avey::kernels::cpu::bias_act_split<double>({.rows = k.rows, .cols = cols, .p = p.data<double>(),
                                                .bias = bias.data<double>(), .has_act = k.has_act, .f = k.f,
                                                .w0 = k.w0, .w1 = k.w1, .z0 = z0.data(), .z1 = z1.data(),
                                                .z2 = k.w2 > 0 ? z2.data() : nullptr, .ld2 = ld2, .keep_p = true,
                                                .zn = zn.data(), .denom = denom.data(), .eps = eps});
    const std::vector<double> p_out = p.to_vector<double>();
    double err = 0;
    for (int64_t r = 0; r < k.rows; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < k.w0; ++c) {
        const double v = p_in[size_t(r * cols + c)] + b[size_t(c)], z = k.has_act ? kernels::unary_value(k.f, v) : v;
        ss += z * z;
      }
      const double d = std::sqrt(ss + eps);
      err = std::max(err, std::abs(denom[size_t(r)] - d) / d);
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = size_t(r * cols + c);
        const double v = p_in[i] + b[size_t(c)], z = k.has_act ? kernels::unary_value(k.f, v) : v;
        err = std::max(err, std::abs(p_out[i] - v));
        const double got = c < k.w0        ? z0[size_t(r * k.w0 + c)]
                           : c < k.w0 + k.w1 ? z1[size_t(r * k.w1 + c - k.w0)]
                                           : z2[size_t(r * ld2 + c - k.w0 - k.w1)];
        err = std::max(err, std::abs(got - z));
        if (c < k.w0) err = std::max(err, std::abs(zn[size_t(r * k.w0 + c)] - z / d));
      }
      for (int64_t c = k.w2; c < ld2; ++c) err = std::max(err, std::abs(z2[size_t(r * ld2 + c)] - 7.0));
    }
    CHECK(err < 1e-14);
  }
}
