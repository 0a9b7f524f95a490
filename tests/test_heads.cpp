// Avey-B's fine-tuning heads (avey/heads.h, docs/model.md section 2): each head and loss against
// a plain loop of its formula (fp64), fp64 gradient checks of every weight and of the encoder's
// rows, and the whole model with a head: names in the reference's order, sizes, init, fused ==
// composed encoder under the head, and an fp64 gradient check of each loss.
#include <algorithm>
#include <cmath>

#include "avey/heads.h"
#include "avey/model.h"
#include "engine/fused_ops.h"
#include "optim/adamw.h"
#include "tests/model_testing.h"

using namespace engine;
using testing::random_leaf;
using testing::rel_diff;

namespace {

// y = x W^T + b by loops; x [M, in], W [out, in].
std::vector<double> loop_linear(const std::vector<double>& x, int64_t M, const Tensor& W, const Tensor& b) {
  const int64_t out = W.size(0), in = W.size(1);
  const auto w = W.to_vector<double>(), bb = b.to_vector<double>();
  std::vector<double> y(size_t(M * out));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < out; ++o) {
      double s = bb[size_t(o)];
      for (int64_t i = 0; i < in; ++i) s += x[size_t(m * in + i)] * w[size_t(o * in + i)];
      y[size_t(m * out + o)] = s;
    }
  return y;
}

double gelu_exact(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

avey::SequenceHead seq_head(const std::vector<Tensor>& in, size_t at) {
  return {{in[at], in[at + 1]}, {in[at + 2], in[at + 3]}, {in[at + 4], in[at + 5]}, {in[at + 6], in[at + 7]}};
}

// A small encoder with a head: d 8, S 3, k 2, 3 layers.
avey::Config head_config(const std::string& head, int64_t labels) {
  avey::Config c = avey::Config::preset("avey-b-tiny");
  c.vocab_size = 17, c.d_embed = 8, c.n_layers = 3, c.split_size = 3, c.top_k = 2, c.mask_id = 16;
  c.head = head, c.num_labels = labels;
  c.validate();
  return c;
}

Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(int32_t(rng.below(uint64_t(V))));
  return Tensor::from(ids, {B, T});
}

// The task loss fused == composed under the head, and its fp64 gradient check.
void check_model_loss(avey::Model& model, const Tensor& ids, const Tensor& labels) {
  testing::check_fused_composed_loss(model, [&] { return model.task_loss(ids, labels); });
}

}  // namespace

TEST_CASE("heads: the sequence head is mean -> GELU stack -> classifier, as a plain loop computes it") {
  const int64_t B = 3, T = 5, d = 4, L = 3;
  Rng rng(21);
  std::vector<Tensor> in{random_leaf({B, T, d}, rng),   random_leaf({2 * d, d}, rng),     random_leaf({2 * d}, rng),
                         random_leaf({2 * d, 2 * d}, rng), random_leaf({2 * d}, rng),     random_leaf({d, 2 * d}, rng),
                         random_leaf({d}, rng),         random_leaf({L, d}, rng),         random_leaf({L}, rng)};
  const Tensor logits = avey::sequence_head(avey::mean_pool(in[0]), seq_head(in, 1));
  REQUIRE(logits.shape() == Shape{B, L});
  const auto out = in[0].to_vector<double>();
  std::vector<double> pooled(size_t(B * d), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) pooled[size_t(b * d + j)] += out[size_t((b * T + t) * d + j)] / double(T);
  std::vector<double> x = loop_linear(pooled, B, in[1], in[2]);
  for (double& v : x) v = gelu_exact(v);
  x = loop_linear(x, B, in[3], in[4]);
  for (double& v : x) v = gelu_exact(v);
  x = loop_linear(loop_linear(x, B, in[5], in[6]), B, in[7], in[8]);  // dense.4 has no activation after it
  CHECK(rel_diff(logits, Tensor::from(x, {B, L})) < 1e-14);
  testing::check_gradients(
      [&](const std::vector<Tensor>& v) { return avey::sequence_head(avey::mean_pool(v[0]), seq_head(v, 1)); }, in);
}

TEST_CASE("heads: the token head is tanh(dense.0) -> classifier on every row, as a plain loop computes it") {
  const int64_t M = 7, d = 5, L = 4;
  Rng rng(22);
  std::vector<Tensor> in{random_leaf({M, d}, rng), random_leaf({d, d}, rng), random_leaf({d}, rng),
                         random_leaf({L, d}, rng), random_leaf({L}, rng)};
  auto head = [](const std::vector<Tensor>& v) { return avey::token_head(v[0], {{v[1], v[2]}, {v[3], v[4]}}); };
  std::vector<double> x = loop_linear(in[0].to_vector<double>(), M, in[1], in[2]);
  for (double& v : x) v = std::tanh(v);
  CHECK(rel_diff(head(in), Tensor::from(loop_linear(x, M, in[3], in[4]), {M, L})) < 1e-14);
  testing::check_gradients(head, in);
}

TEST_CASE("heads: the losses follow the reference's rule (MSE for one label, CE for classes, BCE for multi-labels)") {
  Rng rng(23);
  SUBCASE("BCE with logits equals its formula, and stays finite for large logits") {
    const std::vector<double> xs{-800.0, -3.0, -0.5, 0.0, 0.25, 2.0, 800.0, 30.0}, ys{0, 1, 0.5, 1, 0, 1, 1, 0};
    double want = 0;
    for (size_t i = 0; i < xs.size(); ++i)  // log(1 + e^x) - x y, in the overflow-free form
      want += std::max(xs[i], 0.0) + std::log1p(std::exp(-std::abs(xs[i]))) - xs[i] * ys[i];
    const Tensor got = avey::bce_with_logits(Tensor::from(xs, {4, 2}), Tensor::from(ys, {4, 2}));
    CHECK(got.item() == doctest::Approx(want / 8).epsilon(1e-14));
    std::vector<Tensor> in{random_leaf({3, 4}, rng, 0.05), Tensor::from(std::vector<double>{0, 1, 1, 0, 0, 0, 1, 1, 0.3, 1, 0, 0.7}, {3, 4})};
    testing::check_gradients([](const std::vector<Tensor>& v) { return avey::bce_with_logits(v[0], v[1]); }, in);
  }
  SUBCASE("one label: MSE of the squeezed logits") {
    const Tensor logits = Tensor::from(std::vector<double>{1.0, -2.0, 0.5}, {3, 1});
    const Tensor y = Tensor::from(std::vector<double>{0.0, -1.0, 2.5}, {3});
    CHECK(avey::sequence_loss(logits, y).item() == doctest::Approx((1.0 + 1.0 + 4.0) / 3).epsilon(1e-15));
    std::vector<Tensor> in{random_leaf({4, 1}, rng), random_leaf({4}, rng)};
    testing::check_gradients([](const std::vector<Tensor>& v) { return avey::sequence_loss(v[0], v[1]); }, in);
  }
  SUBCASE("integer labels: cross-entropy; float [B, labels]: BCE; anything else is one clear error") {
    const Tensor logits = Tensor::from(std::vector<double>{2.0, 0.0, 0.0, 1.0}, {2, 2});
    const double ce = 0.5 * (std::log(1 + std::exp(-2.0)) + std::log(1 + std::exp(-1.0)));
    CHECK(avey::sequence_loss(logits, Tensor::from(std::vector<int32_t>{0, 1}, {2})).item() == doctest::Approx(ce));
    const Tensor multi = Tensor::from(std::vector<double>{1, 0, 0, 1}, {2, 2});
    CHECK(avey::sequence_loss(logits, multi).item() == doctest::Approx(avey::bce_with_logits(logits, multi).item()));
    CHECK_THROWS_WITH(avey::sequence_loss(logits, Tensor::from(std::vector<double>{1, 0}, {2})),
                      doctest::Contains("multi-labels [B, 2]"));
    CHECK_THROWS_WITH(avey::sequence_loss(Tensor::from(std::vector<double>{1, 2}, {2, 1}), Tensor::from(std::vector<int32_t>{0, 1}, {2})),
                      doctest::Contains("float targets [B]"));
  }
}

TEST_CASE("heads: a model with a head has the reference's names after the encoder's, its size and init") {
  avey::Config c = avey::Config::preset("avey-b-tiny");
  c.vocab_size = 1000, c.mask_id = 999, c.head = "sequence", c.num_labels = 3;
  avey::Model m(c);
  CHECK(m.num_params() == c.param_count());
  const int64_t d = 128, encoder = [&] { avey::Config e = c; e.head.clear(), e.num_labels = 0; return e.param_count(); }();
  CHECK(c.param_count() - encoder == (2 * d * d + 2 * d) + (4 * d * d + 2 * d) + (2 * d * d + d) + (3 * d + 3));
  std::vector<std::string> tail;
  for (size_t i = m.params().size() - 9; i < m.params().size(); ++i) tail.push_back(m.params()[i].name);
  CHECK(tail == std::vector<std::string>{"ranker.down_proj", "dense.0.weight", "dense.0.bias", "dense.2.weight", "dense.2.bias",
                                         "dense.4.weight", "dense.4.bias", "classifier.weight", "classifier.bias"});
  m.init(3);
  for (auto& p : m.params()) {  // Xavier-normal weights, zero biases (the reference's _init_weights)
    const auto v = p.value.to_vector<float>();
    double s = 0;
    for (float x : v) s += double(x) * x;
    if (p.name == "dense.2.weight") CHECK(std::sqrt(s / double(v.size())) == doctest::Approx(std::sqrt(2.0 / (4 * d))).epsilon(0.03));
    if (p.name == "classifier.weight") CHECK(std::sqrt(s / double(v.size())) == doctest::Approx(std::sqrt(2.0 / (d + 3))).epsilon(0.1));
    if (p.name == "dense.4.bias") CHECK(s == 0.0);
  }
  avey::Config t = c;
  t.head = "token", t.num_labels = 5;
  avey::Model mt(t);
  CHECK(mt.params().back().name == "classifier.bias");
  CHECK(mt.params()[mt.params().size() - 4].name == "dense.0.weight");
  CHECK(mt.num_params() == t.param_count());
  CHECK_THROWS_WITH(avey::Config::from_json({{"model", "avey-b"}, {"head", "sequence"}}), doctest::Contains("num_labels >= 1"));
  CHECK_THROWS_WITH(avey::Config::from_json({{"head", "token"}, {"num_labels", 2}}), doctest::Contains("not a key of model 'avey'"));
  CHECK_THROWS_WITH(avey::Config::from_json({{"model", "avey-b"}, {"head", "pooled"}, {"num_labels", 2}}),
                    doctest::Contains("'pooled' is not one of"));
}

TEST_CASE("heads: the model's task losses, fused == composed under the head, and fp64 gradient checks") {
  const Tensor ids = random_ids(2, 10, 16, 31);  // T = 10, S = 3: padding in the last split
  SUBCASE("sequence head, cross-entropy") {
    avey::Model model(head_config("sequence", 3), Device::CPU, DType::F64);
    model.init(5);
    check_model_loss(model, ids, Tensor::from(std::vector<int32_t>{2, 0}, {2}));
    const Tensor logits = model.task_logits(ids);
    CHECK(logits.shape() == Shape{2, 3});
  }
  SUBCASE("sequence head, regression (one label, MSE)") {
    avey::Model model(head_config("sequence", 1), Device::CPU, DType::F64);
    model.init(6);
    check_model_loss(model, ids, Tensor::from(std::vector<double>{0.5, -1.5}, {2}));
  }
  SUBCASE("sequence head, multi-label (BCE)") {
    avey::Model model(head_config("sequence", 2), Device::CPU, DType::F64);
    model.init(7);
    check_model_loss(model, ids, Tensor::from(std::vector<double>{1, 0, 1, 1}, {2, 2}));
  }
  SUBCASE("token head, cross-entropy over labels != -100") {
    avey::Model model(head_config("token", 4), Device::CPU, DType::F64);
    model.init(8);
    std::vector<int32_t> lab(20);
    for (int i = 0; i < 20; ++i) lab[size_t(i)] = i % 5 == 4 ? -100 : i % 4;
    const Tensor labels = Tensor::from(lab, {2, 10});
    check_model_loss(model, ids, labels);
    const Tensor logits = model.task_logits(ids);
    CHECK(logits.shape() == Shape{2, 10, 4});
    lab[3] = 4;
    CHECK_THROWS_WITH(model.task_loss(ids, Tensor::from(lab, {2, 10})), doctest::Contains("token label 4 outside [0, 4)"));
  }
}

TEST_CASE("heads: fine-tuning with the reference's optimizer learns a simple rule with either head") {
  // token head: label = id parity; sequence head: label = whether id 3 occurs. Random sequences of
  // 12 ids from 16, 150 AdamW steps (0.9, 0.95, eps 1e-5), then a fresh batch.
  for (const std::string head : {"token", "sequence"}) {
    CAPTURE(head);
    avey::Config c = head_config(head, 2);
    c.d_embed = 16, c.split_size = 4;
    avey::Model model(c, Device::CPU, DType::F32);
    model.init(1);
    std::vector<optim::Segment> segs;
    for (const avey::Param& p : model.params()) segs.push_back(optim::segment_of(p.name, p.value, model.flat_params()));
    optim::AdamW opt(model.flat_params(), segs, optim::AdamWConfig{0.9, 0.95, 1e-5, 0.0});
    auto batch = [&](uint64_t seed) {
      const Tensor ids = random_ids(16, 12, 16, seed);
      const std::vector<int32_t> v = ids.to_vector<int32_t>();
      std::vector<int32_t> lab;
      if (head == "token") {
        for (int32_t id : v) lab.push_back(id % 2);
        return std::pair{ids, Tensor::from(lab, {16, 12})};
      }
      for (int b = 0; b < 16; ++b) lab.push_back(std::count(v.begin() + b * 12, v.begin() + (b + 1) * 12, 3) > 0);
      return std::pair{ids, Tensor::from(lab, {16})};
    };
    for (int step = 0; step < 150; ++step) {
      auto [ids, labels] = batch(uint64_t(100 + step));
      model.zero_grad();
      model.task_loss(ids, labels).backward();
      opt.step(model.flat_grads(), 3e-3);
    }
    auto [ids, labels] = batch(7);
    const Tensor logits = model.task_logits(ids);
    const std::vector<int32_t> pred = row_argmax(reshape(logits, {logits.numel() / 2, 2})).to_vector<int32_t>();
    const std::vector<int32_t> want = labels.to_vector<int32_t>();
    double right = 0;
    for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == want[i];
    CHECK(right / double(pred.size()) > 0.9);
  }
}
