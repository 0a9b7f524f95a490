// The tape's semantics: accumulation, no-grad scopes, hooks, freed saved tensors, errors.
#include "tests/testing.h"

using namespace engine;
using testing::random_leaf;

TEST_CASE("autograd: gradient of a shared input sums both paths") {
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3}, {3});
  x.requires_grad_();
  Tensor y = sum(add(mul(x, x), scale(x, 3.0)));  // sum(x^2 + 3x) -> dy/dx = 2x + 3
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
}

TEST_CASE("autograd: parameter gradients accumulate across backward calls") {
  Tensor w = Tensor::from(std::vector<double>{1, -2}, {2});
  w.requires_grad_();
  sum(scale(w, 2.0)).backward();
  sum(scale(w, 2.0)).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{4, 4});
  w.zero_grad();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{0, 0});
}

TEST_CASE("autograd: discard_grad makes the next gradient overwrite the buffer, then backward adds again") {
  Tensor buf = Tensor::from(std::vector<double>{7, 7, 7, 7}, {4});  // a flat gradient buffer with stale values
  Tensor w = Tensor::from(std::vector<double>{1, -2}, {2});
  w.requires_grad_();
  w.set_grad(buf.view(1, {2}));
  w.discard_grad();
  sum(scale(w, 2.0)).backward();
  CHECK(buf.to_vector<double>() == std::vector<double>{7, 2, 2, 7});  // written, not added to the 7s
  sum(scale(w, 3.0)).backward();
  CHECK(buf.to_vector<double>() == std::vector<double>{7, 5, 5, 7});
  w.discard_grad();  // no backward reaches w: reading its gradient gives zeros
  CHECK(w.grad().to_vector<double>() == std::vector<double>{0, 0});
  CHECK(buf.to_vector<double>() == std::vector<double>{7, 0, 0, 7});
  // a second leaf on the same gradient (a master weight beside its working copy) shares the mark:
  // reading it after the working copy's backward gives that gradient, not zeros
  Tensor master = Tensor::from(std::vector<double>{1, -2}, {2});
  master.requires_grad_();
  master.set_grad(w.grad());
  w.discard_grad();
  sum(scale(w, 4.0)).backward();
  CHECK(master.grad().to_vector<double>() == std::vector<double>{4, 4});
  // the mixed-precision case writes a bf16 gradient into an f32 buffer: copy_ converts
  Tensor f = Tensor::from(std::vector<float>{7, 7}, {2});
  f.copy_(Tensor::from(std::vector<float>{1.5f, -3.0f}, {2}).to(DType::BF16));
  CHECK(f.to_vector<float>() == std::vector<float>{1.5f, -3.0f});
}

TEST_CASE("autograd: a parameter with an fp32 gradient buffer gets its gradients summed at the end") {
  Tensor buf = Tensor::from(std::vector<float>{7, 7, 7, 7}, {4});
  Tensor w = Tensor::from(std::vector<float>{1, -2, 0.5f}, {3});
  w.requires_grad_();
  w.set_grad(buf.view(1, {3}));
  w.discard_grad();
  sum(add(mul(w, w), scale(w, 3.0))).backward();  // two paths: 2w + 3, written over the 7s
  CHECK(buf.to_vector<float>() == std::vector<float>{7, 5, -1, 4});
  sum(scale(w, 0.5)).backward();  // then added
  CHECK(buf.to_vector<float>() == std::vector<float>{7, 5.5f, -0.5f, 4.5f});
  // a hook on the parameter still sees its summed gradient, which still lands in the buffer
  std::vector<float> seen;
  gradient_edge(w)->hooks.push_back({"w", [&seen](const Tensor& g) { seen = g.to_vector<float>(); }});
  w.discard_grad();
  sum(add(w, w)).backward();
  CHECK(seen == std::vector<float>{2, 2, 2});
  CHECK(buf.to_vector<float>() == std::vector<float>{7, 2, 2, 2});
}

TEST_CASE("accumulate_grads: parts in fp32 and bf16 are added in fp32 in their order, then replace or add") {
  Rng rng(5);
  const int64_t n = 37;
  std::vector<Tensor> parts;
  for (int k = 0; k < 6; ++k) parts.push_back(Tensor::randn({n}, rng, k + 1.0, k % 2 ? DType::BF16 : DType::F32));
  Tensor old = Tensor::randn({n}, rng);
  for (size_t count : {1, 2, 4, 6}) {  // 6 parts: more than one slot holds (kGradParts), summed first
    for (bool replace : {true, false}) {
      CAPTURE(count);
      CAPTURE(replace);
      Tensor grad = old.clone();
      accumulate_grads({{grad, std::vector<Tensor>(parts.begin(), parts.begin() + int64_t(count)), replace}});
      std::vector<float> want = old.to_vector<float>();
      for (int64_t i = 0; i < n; ++i) {
        float v = 0.f;
        for (size_t k = 0; k < count; ++k) {
          const float x = parts[k].to(DType::F32).to_vector<float>()[size_t(i)];
          v = k == 0 ? x : v + x;
        }
        want[size_t(i)] = replace ? v : want[size_t(i)] + v;
      }
      CHECK(grad.to_vector<float>() == want);
    }
  }
  Tensor f64 = Tensor::zeros({n}, DType::F64);
  CHECK_THROWS_WITH_AS(accumulate_grads({{f64, {parts[0]}, true}}), doctest::Contains("accumulate_grads"),
                       std::invalid_argument);
  Tensor short_grad = Tensor::zeros({n - 1});
  CHECK_THROWS_WITH_AS(accumulate_grads({{short_grad, {parts[0]}, true}}), doctest::Contains("does not fit"),
                       std::invalid_argument);
}

TEST_CASE("autograd: no-grad scope records nothing") {
  Tensor w = Tensor::from(std::vector<double>{1, 2}, {2});
  w.requires_grad_();
  NoGrad guard;
  Tensor y = mul(w, w);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
}

TEST_CASE("autograd: hooks see intermediate and leaf gradients by name") {
  Tensor x = Tensor::from(std::vector<double>{1, 2}, {2});
  x.requires_grad_();
  Tensor h = scale(x, 3.0);
  std::vector<double> seen_h, seen_x;
  h.register_hook("h", [&](const Tensor& g) { seen_h = g.to_vector<double>(); });
  x.register_hook("x", [&](const Tensor& g) { seen_x = g.to_vector<double>(); });
  sum(mul(h, h)).backward();  // d/dh = 2h = (6, 12); d/dx = 3 * 2h = (18, 36)
  CHECK(seen_h == std::vector<double>{6, 12});
  CHECK(seen_x == std::vector<double>{18, 36});
}

TEST_CASE("autograd: saved tensors are released after backward, a second backward is an error") {
  Tensor x = Tensor::from(std::vector<double>{1, 2}, {2});
  x.requires_grad_();
  Tensor a = mul(x, x);
  Tensor loss = sum(a);
  long before = x.impl_ptr().use_count();  // the mul node holds x twice (as a and as b)
  loss.backward();
  CHECK(x.impl_ptr().use_count() < before);
  CHECK(a.grad_fn()->backward == nullptr);
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already backpropagated"), std::invalid_argument);
}

TEST_CASE("autograd: branches that give no gradient do not block the rest") {
  Tensor x = Tensor::from(std::vector<double>{1, 2}, {2});
  x.requires_grad_();
  Tensor w = Tensor::from(std::vector<double>{3, 4}, {2});
  w.requires_grad_();
  Tensor u = mul(x, w);
  Tensor y = sum(add(u, x));
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{4, 5});
  CHECK(w.grad().to_vector<double>() == std::vector<double>{1, 2});
}

TEST_CASE("tensor: clear errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: inner dims differ (3 vs 4)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: cannot broadcast f32[4, 5] cpu over f32[2, 3] cpu"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(sum(a).backward(), doctest::Contains("does not require a gradient"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(a.data<double>(), doctest::Contains("asked for f64 elements of f32[2, 3] cpu"),
                       std::invalid_argument);
}

TEST_CASE("tensor: views share storage, dtype conversions round-trip") {
  Tensor a = Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = a.view(3, {3});
  v.fill_(0.5);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 2, 3, 0.5f, 0.5f, 0.5f});
  Tensor b = a.to(DType::BF16).to(DType::F32);
  CHECK(b.to_vector<float>() == a.to_vector<float>());  // all exactly representable in bf16
  CHECK(kernels::to_float(kernels::to_bf16(1.00390625f)) == 1.0f);  // ties round to even
  CHECK(Tensor::from(std::vector<int32_t>{7}, {1}).item() == 7.0);
}
