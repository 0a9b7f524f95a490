// The whole Avey model: parameter counts, every ablation switch gradient-checked through the
// loss in f64, fused == composed, generation mode == full forward, state round trip.
#include <fmt/format.h>
#include <omp.h>

#include "avey/model.h"
#include "engine/safetensors.h"
#include "tests/testing.h"

using namespace engine;
using testing::rel_diff;

namespace {

avey::Config test_config() {
  avey::Config c;
  c.vocab_size = 13, c.d_embed = 8, c.n_layers = 2, c.split_size = 3, c.top_k = 2;
  return c;  // m = 32, mt = 16, h = 8, mh = 16, C = 9
}

struct Batch {
  Tensor ids, labels;
};

Batch make_batch(const avey::Config& c, int64_t B, int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids, labels;
  for (int64_t i = 0; i < B * T; ++i) {
    ids.push_back(int32_t(rng.below(uint64_t(c.vocab_size))));
    labels.push_back(rng.uniform() < 0.15 ? -100 : int32_t(rng.below(uint64_t(c.vocab_size))));
  }
  labels[0] = 1;
  return {Tensor::from(ids, {B, T}), Tensor::from(labels, {B, T})};
}

// Every switch docs/model.md lists, each as one config.
std::vector<std::pair<std::string, avey::Config>> ablations() {
  std::vector<std::pair<std::string, avey::Config>> out;
  auto add = [&](const std::string& name, std::function<void(avey::Config&)> f) {
    avey::Config c = test_config();
    f(c);
    c.validate();
    out.push_back({name, c});
  };
  add("default", [](auto&) {});
  add("ranker_weight_norm=first", [](auto& c) { c.ranker_weight_norm = "first"; });
  add("enricher_activation=none", [](auto& c) { c.enricher_activation = avey::Activation::None; });
  add("enricher_activation=relu", [](auto& c) { c.enricher_activation = avey::Activation::Relu; });
  add("enricher_activation=gelu", [](auto& c) { c.enricher_activation = avey::Activation::Gelu; });
  add("enricher_activation=silu", [](auto& c) { c.enricher_activation = avey::Activation::Silu; });
  add("contextualizer_activation=relu2", [](auto& c) { c.contextualizer_activation = avey::Activation::Relu2; });
  add("contextualizer_activation=gelu", [](auto& c) { c.contextualizer_activation = avey::Activation::Gelu; });
  add("expansion_factor=3 tail_proportion=0.3", [](auto& c) { c.expansion_factor = 3, c.tail_proportion = 0.3; });
  add("tail_proportion=1 (no bypass)", [](auto& c) { c.tail_proportion = 1.0; });
  add("dynamic=false", [](auto& c) { c.dynamic = false; });
  add("split_weighting=false", [](auto& c) { c.split_weighting = false; });
  add("ranker=false", [](auto& c) { c.ranker = false; });
  add("norm=layernorm", [](auto& c) { c.norm = "layernorm"; });
  add("contextualizer=attention", [](auto& c) { c.contextualizer = "attention", c.attention_head_size = 4; });
  return out;
}

std::vector<Tensor> param_values(avey::Model& m) {
  std::vector<Tensor> v;
  for (auto& p : m.params()) v.push_back(p.value);
  return v;
}

}  // namespace

TEST_CASE("avey model: parameter counts match docs/model.md") {
  CHECK(avey::Config::preset("tiny").param_count() == 15'767'808);
  CHECK(avey::Config::preset("small").param_count() == 152'917'760);
  avey::Model tiny(avey::Config::preset("tiny"));
  CHECK(tiny.num_params() == 15'767'808);
  MESSAGE("parameters: tiny " << avey::Config::preset("tiny").param_count() << ", small "
                              << avey::Config::preset("small").param_count() << ", medium "
                              << avey::Config::preset("medium").param_count() << ", large "
                              << avey::Config::preset("large").param_count());
  // names and shapes in the reference's order
  auto& ps = tiny.params();
  CHECK(ps.front().name == "wte.weight");
  CHECK(ps[1].name == "blocks.0.rms_norm.weight");
  CHECK(ps[2].name == "blocks.0.ctxt.enricher.weight");
  CHECK(ps[2].value.shape() == Shape{1024, 256});
  CHECK(ps[4].name == "blocks.0.ctxt.contextualizer.spatial_proj");
  CHECK(ps[4].value.shape() == Shape{512, 512});
  CHECK(ps[5].value.shape() == Shape{256, 768});
  CHECK(ps.back().name == "ln_f.weight");
}

TEST_CASE("avey model: init follows docs/model.md's distributions and is deterministic") {
  avey::Config c = avey::Config::preset("tiny");
  c.vocab_size = 1000;
  avey::Model a(c), b(c);
  a.init(11);
  b.init(11);
  CHECK(rel_diff(a.flat_params(), b.flat_params()) == 0);
  for (auto& p : a.params()) {
    auto v = p.value.to_vector<float>();
    double s = 0, mx = 0;
    for (float x : v) s += double(x) * x, mx = std::max(mx, double(std::abs(x)));
    double rms = std::sqrt(s / double(v.size()));
    if (p.name == "wte.weight") CHECK(rms == doctest::Approx(std::sqrt(2.0 / (1000 + 256))).epsilon(0.02));
    if (p.name == "blocks.0.ctxt.contextualizer.spatial_proj") CHECK(rms == doctest::Approx(std::sqrt(1.0 / 512)).epsilon(0.02));
    if (p.name == "blocks.0.ctxt.enricher.weight") CHECK(mx <= 1.0 / 16.0);
    if (p.name == "blocks.0.ctxt.fuser.weight") CHECK(mx <= 1.0 / std::sqrt(768.0));
    if (p.name == "ln_f.weight") CHECK(mx == 1.0);
  }
}

TEST_CASE("avey model: every ablation switch, fused == composed == unpacked, and fp64 gradcheck of the loss") {
  for (auto& [name, cfg] : ablations()) {
    INFO(name);
    avey::Model model(cfg, Device::CPU, DType::F64);
    model.init(5);
    Batch batch = make_batch(cfg, 2, 10, 9);  // T = 10, S = 3: T % S != 0
    // fused vs composed: loss and every gradient
    model.zero_grad();
    Tensor lf = model.loss(batch.ids, batch.labels);
    lf.backward();
    Tensor gf = model.flat_grads().clone();
    model.set_composed(true);
    model.zero_grad();
    Tensor lc = model.loss(batch.ids, batch.labels);
    lc.backward();
    model.set_composed(false);
    CHECK(std::abs(lf.item() - lc.item()) < 1e-12 * std::abs(lc.item()));
    CHECK(rel_diff(gf, model.flat_grads()) < 1e-11);
    // each context's padding rows kept (docs/model.md row for row) vs computed once (avey/packing.h)
    model.set_packing(false);
    model.zero_grad();
    Tensor lu = model.loss(batch.ids, batch.labels);
    lu.backward();
    model.set_packing(true);
    CHECK(std::abs(lf.item() - lu.item()) < 1e-12 * std::abs(lu.item()));
    CHECK(rel_diff(gf, model.flat_grads()) < 1e-11);
    // finite differences over every parameter
    auto params = param_values(model);
    testing::check_gradients([&](const std::vector<Tensor>&) { return model.loss(batch.ids, batch.labels); }, params);
  }
}

TEST_CASE("avey model: generation mode equals the full forward's last position") {
  for (auto& [name, cfg] : ablations()) {
    INFO(name);
    avey::Model model(cfg, Device::CPU, DType::F64);
    model.init(6);
    Batch batch = make_batch(cfg, 1, 14, 10);
    auto ids = batch.ids.to_vector<int32_t>();
    for (int64_t T : {1, 2, 3, 4, 7, 9, 11, 14}) {
      INFO("T = " << T);
      std::vector<int32_t> prefix(ids.begin(), ids.begin() + T);
      Tensor full = model.logits(Tensor::from(prefix, {1, T}));
      Tensor last = full.view((T - 1) * cfg.vocab_size, {cfg.vocab_size});
      Tensor gen = model.next_token_logits(prefix);
      CHECK(rel_diff(gen, last) < 1e-12);
    }
  }
}

TEST_CASE("avey model: logits agree with the loss, f32 close to f64") {
  avey::Config cfg = test_config();
  avey::Model m64(cfg, Device::CPU, DType::F64), m32(cfg, Device::CPU, DType::F32);
  m64.init(3);
  m32.load_state(m64.state());
  Batch batch = make_batch(cfg, 2, 10, 4);
  double l64 = m64.loss(batch.ids, batch.labels).item();
  double l32 = m32.loss(batch.ids, batch.labels).item();
  CHECK(std::abs(l64 - l32) < 1e-5 * std::abs(l64));
  // loss from logits, computed by hand
  Tensor lg = m64.logits(batch.ids);
  auto lv = lg.to_vector<double>();
  auto lab = batch.labels.to_vector<int32_t>();
  double total = 0;
  int count = 0;
  for (size_t r = 0; r < lab.size(); ++r) {
    if (lab[r] == -100) continue;
    double mx = -1e300, se = 0;
    for (int64_t v = 0; v < cfg.vocab_size; ++v) mx = std::max(mx, lv[r * 13 + size_t(v)]);
    for (int64_t v = 0; v < cfg.vocab_size; ++v) se += std::exp(lv[r * 13 + size_t(v)] - mx);
    total += mx + std::log(se) - lv[r * 13 + size_t(lab[r])];
    ++count;
  }
  CHECK(std::abs(total / count - l64) < 1e-12 * std::abs(l64));
}

TEST_CASE("avey model: state save/load round trip and clear errors") {
  avey::Config cfg = test_config();
  avey::Model a(cfg), b(cfg);
  a.init(1);
  std::string path = std::string(AVEY_BINARY_DIR) + "/test_avey_state.safetensors";
  std::vector<std::pair<std::string, Tensor>> named;
  for (auto& [n, t] : a.state()) named.push_back({n, t});
  save_safetensors(path, named);
  b.load_state(load_safetensors(path));
  CHECK(rel_diff(a.flat_params(), b.flat_params()) == 0);
  auto st = a.state();
  // bf16 is accepted
  std::map<std::string, Tensor> bf;
  for (auto& [n, t] : st) bf[n] = t.to(DType::BF16);
  b.load_state(bf);
  CHECK(rel_diff(a.flat_params(), b.flat_params()) < 1e-2);
  auto missing = st;
  missing.erase("ln_f.weight");
  CHECK_THROWS_WITH(b.load_state(missing), doctest::Contains("missing tensor 'ln_f.weight'"));
  auto extra = st;
  extra["foo"] = Tensor::zeros({1});
  CHECK_THROWS_WITH(b.load_state(extra), doctest::Contains("unexpected tensor 'foo'"));
  auto shaped = st;
  shaped["blocks.1.ctxt.fuser.bias"] = Tensor::zeros({3});
  CHECK_THROWS_WITH(b.load_state(shaped), doctest::Contains("'blocks.1.ctxt.fuser.bias' has shape [3]"));
}

TEST_CASE("avey model: a training step gives the same bits on one thread or several") {
  // Large enough that every kernel's OpenMP threshold is passed and the products' inner
  // dimensions exceed a cache block (rows 1,536 of packed contexts, V 3,000).
  avey::Config cfg = avey::Config::preset("tiny");
  cfg.vocab_size = 3000, cfg.d_embed = 64, cfg.n_layers = 2, cfg.split_size = 32, cfg.top_k = 3;
  avey::Model model(cfg);
  model.init(7);
  Batch batch = make_batch(cfg, 3, 200, 8);  // T % S != 0
  auto step = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    model.zero_grad();
    Tensor loss = model.loss(batch.ids, batch.labels);
    loss.backward();
    omp_set_num_threads(before);
    std::vector<float> out = model.flat_grads().to_vector<float>();
    out.push_back(float(loss.item()));
    return out;
  };
  const std::vector<float> one = step(1);
  CHECK(step(2) == one);
  CHECK(step(3) == one);
}
