// Avey-B, the encoder (avey/encoder.h, docs/model.md section 2): its config and sizes, its
// ranker's rule, each layer fused == composed with an fp64 gradient check, and the whole model
// fused == composed with an fp64 gradient check of the MLM loss.
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "avey/encoder.h"
#include "avey/model.h"
#include "data/masking.h"
#include "tests/model_testing.h"

using namespace engine;
using testing::random_leaf;
using testing::rel_diff;

namespace {

// d 8, S 3, k 2 (C 9), 3 layers: static, dynamic, static.
avey::Config encoder_config() {
  avey::Config c = avey::Config::preset("avey-b-tiny");
  c.vocab_size = 17, c.d_embed = 8, c.n_layers = 3, c.split_size = 3, c.top_k = 2, c.mask_id = 16;
  c.validate();
  return c;
}

// A masked batch: 20% of the positions masked (the mask id), labelled there, -100 elsewhere.
std::pair<Tensor, Tensor> mlm_batch(const avey::Config& c, int64_t B, int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids, labels(size_t(B * T), -100);
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(int32_t(rng.below(uint64_t(c.mask_id))));
  for (int64_t i = 0; i < B * T; i += 5) labels[size_t(i)] = ids[size_t(i)], ids[size_t(i)] = int32_t(c.mask_id);
  return {Tensor::from(ids, {B, T}), Tensor::from(labels, {B, T})};
}

}  // namespace

TEST_CASE("avey-b: the config, parameter counts and names of docs/model.md section 2") {
  const avey::Config base = avey::Config::preset("avey-b-base");
  CHECK(base.is_encoder());
  CHECK(base.param_count() == 163'929'118);
  avey::Model m(base);
  CHECK(m.num_params() == 163'929'118);
  int64_t layer0 = 0, layer1 = 0;
  for (const avey::Param& p : m.params()) {
    if (p.name.rfind("layers.0.", 0) == 0) layer0 += p.value.numel();
    if (p.name.rfind("layers.1.", 0) == 0) layer1 += p.value.numel();
  }
  CHECK(layer0 == 4'198'913);  // static: with its [S, S] spatial_proj
  CHECK(layer1 == 4'133'377);  // dynamic
  auto& ps = m.params();
  CHECK(ps.front().name == "embed.weight");
  CHECK(ps.front().value.numel() == 38'682'624);
  CHECK(ps[4].name == "layers.0.spatial_proj");
  CHECK(ps[7].name == "layers.0.alpha");
  CHECK(ps[7].value.shape() == Shape{});  // 0-dim, as the reference stores it
  CHECK(ps.back().name == "ranker.down_proj");
  CHECK(ps.back().value.numel() == 262'144);
  // the reference's key names, and what does not fit
  const avey::Config r = avey::Config::from_json({{"model", "avey-b"}, {"chunk_size", 128}, {"k", 2}, {"n_layers", 2}});
  CHECK(r.split_size == 128);
  CHECK(r.top_k == 2);
  CHECK(r.context_rows() == 384);
  CHECK_THROWS_WITH(avey::Config::from_json({{"model", "avey-b"}, {"tail_proportion", 0.3}}),
                    doctest::Contains("not a key of model 'avey-b'"));
  CHECK_THROWS_WITH(avey::Config::from_json({{"model", "avey-b"}, {"vocab_size", 50281}}),
                    doctest::Contains("no room for the mask token"));
}

TEST_CASE("avey-b: init follows docs/model.md section 2 and alpha starts at 1") {
  avey::Config c = avey::Config::preset("avey-b-tiny");
  c.vocab_size = 1000, c.mask_id = 999;
  avey::Model m(c);
  m.init(11);
  for (auto& p : m.params()) {
    const auto v = p.value.to_vector<float>();
    double s = 0;
    for (float x : v) s += double(x) * x;
    const double rms = std::sqrt(s / double(v.size()));
    if (p.name == "embed.weight") CHECK(rms == doctest::Approx(std::sqrt(2.0 / (1000 + 128))).epsilon(0.03));
    if (p.name == "layers.0.enricher.weight") CHECK(rms == doctest::Approx(std::sqrt(2.0 / (128 + 512))).epsilon(0.03));
    if (p.name == "layers.0.fuser.weight") CHECK(rms == doctest::Approx(std::sqrt(2.0 / (384 + 128))).epsilon(0.03));
    if (p.name == "layers.0.spatial_proj") CHECK(rms == doctest::Approx(std::sqrt(1.0 / 64)).epsilon(0.05));
    if (p.name == "ranker.down_proj") CHECK(rms == doctest::Approx(std::sqrt(2.0 / (64 + 256))).epsilon(0.03));
    if (p.name == "layers.0.enricher.bias") CHECK(s == 0.0);
    if (p.name == "layers.1.alpha") CHECK(v[0] == 1.0f);
  }
}

TEST_CASE("avey-b: the ranker keeps the top splits by descending score, weighted by the smallest") {
  avey::Config c = encoder_config();
  c.top_k = 3;
  // one sequence of 5 splits; split 4's scores against splits 0..3
  const std::vector<double> scores_row{0.5, 2.0, 1.0, 3.0};
  std::vector<double> scores(25, 0.0);
  for (int j = 0; j < 4; ++j) scores[size_t(4 * 5 + j)] = scores_row[size_t(j)];
  for (int i = 1; i < 4; ++i)
    for (int j = 0; j < i; ++j) scores[size_t(i * 5 + j)] = 1.0 + j;
  const avey::ContextPlan p = avey::plan_contexts(c, 1, 5, {0, 1, 2, 3, 4}, scores, 5);
  const auto split = p.split.to_vector<int32_t>();
  const auto weight = p.weight.to_vector<double>();
  // context 4: slots 3 (score 3), 1 (2), 2 (1), then 4 itself; w = v / (min v + eps), min = 1
  CHECK(std::vector<int32_t>(split.begin() + 16, split.end()) == std::vector<int32_t>{3, 1, 2, 4});
  CHECK(weight[16] == doctest::Approx(3.0));
  CHECK(weight[17] == doctest::Approx(2.0));
  CHECK(weight[18] == doctest::Approx(1.0));
  CHECK(weight[19] == 1.0);
  // context 1: one kept split, after two empty slots
  CHECK(std::vector<int32_t>(split.begin() + 4, split.begin() + 8) == std::vector<int32_t>{0, 0, 0, 1});
  CHECK(weight[4] == 0.0);
  CHECK(weight[6] == doctest::Approx(1.0));
}

TEST_CASE("avey-b: each layer fused == composed (static and dynamic, f64), and passes a gradient check") {
  const avey::Config c = encoder_config();
  const int64_t d = c.d_embed, S = c.split_size, rows = 4 * S;
  for (bool is_static : {true, false}) {
    CAPTURE(is_static);
    Rng rng(is_static ? 3 : 4);
    std::vector<Tensor> x{random_leaf({rows, d}, rng),         random_leaf({d}, rng, 0.5),
                          random_leaf({4 * d, d}, rng),        random_leaf({4 * d}, rng),
                          is_static ? random_leaf({S, S}, rng) : Tensor(),
                          random_leaf({d, 3 * d}, rng),        random_leaf({d}, rng),
                          random_leaf({}, rng, 0.5)};
    auto weights = [](const std::vector<Tensor>& in) {
      return avey::EncoderLayerWeights{in[1], in[2], in[3], in[4], in[5], in[6], in[7]};
    };
    auto fused = [&](const std::vector<Tensor>& in) { return avey::encoder_layer_fused(in[0], weights(in), c); };
    auto composed = [&](const std::vector<Tensor>& in) { return avey::encoder_layer_composed(in[0], weights(in), c); };
    Tensor a = fused(x), b = composed(x);
    CHECK(rel_diff(a, b) < 1e-12);
    Tensor w = random_leaf(a.shape(), rng).detach();
    std::vector<Tensor> ga, gb;
    sum(mul(a, w)).backward();
    for (Tensor& t : x)
      if (t.defined()) ga.push_back(t.grad().clone()), t.zero_grad();
    sum(mul(composed(x), w)).backward();
    for (Tensor& t : x)
      if (t.defined()) gb.push_back(t.grad().clone()), t.zero_grad();
    for (size_t i = 0; i < ga.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_diff(ga[i], gb[i]) < 1e-10);
    }
    std::vector<Tensor> defined;
    for (const Tensor& t : x)
      if (t.defined()) defined.push_back(t);
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) {
          std::vector<Tensor> all = in;
          if (!is_static) all.insert(all.begin() + 4, Tensor());
          return fused(all);
        },
        defined);
  }
}

TEST_CASE("avey-b: the model's MLM loss, fused == composed, and an fp64 gradient check") {
  const avey::Config c = encoder_config();
  avey::Model model(c, Device::CPU, DType::F64);
  model.init(5);
  auto [ids, labels] = mlm_batch(c, 2, 10, 9);  // T = 10, S = 3: padding in the last split
  testing::check_fused_composed_loss(model, [&] { return model.loss(ids, labels); });
  // logits agree with the loss at the labelled positions
  Tensor logits = model.logits(ids);
  CHECK(logits.shape() == Shape{2, 10, c.vocab_size});
  CHECK_THROWS_WITH(model.next_token_logits({1, 2, 3}), doctest::Contains("does not generate"));
}

TEST_CASE("avey-b: masking picks round(0.2 B T) distinct positions, labels them, and is seeded") {
  CHECK(data::mask_count(8 * 2048) == 3277);  // 3276.8
  CHECK(data::mask_count(10) == 2);
  CHECK(data::mask_count(2) == 1);   // at least one
  CHECK(data::mask_count(3, 0.9) == 2);  // at most B T - 1
  CHECK(data::mask_count(25, 0.1) == 2);  // 2.5: half to even, as the reference's round()
  std::vector<int32_t> ids(200);
  std::iota(ids.begin(), ids.end(), 0);
  Rng a(7), b(7);
  const data::MaskedBatch m = data::mask_tokens(ids, 999, a), m2 = data::mask_tokens(ids, 999, b);
  CHECK(m.input_ids == m2.input_ids);
  int64_t masked = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool is_masked = m.input_ids[i] == 999;
    masked += is_masked;
    CHECK(m.labels[i] == (is_masked ? ids[i] : -100));
    if (!is_masked) CHECK(m.input_ids[i] == ids[i]);
  }
  CHECK(masked == 40);
}
