// optim/: AdamW against a scalar reference of PyTorch's documented algorithm (and hand-derived
// values), the schedules at their key steps, gradient norms and the clip coefficient, the
// optimizer state's save/load, and the accumulation helper.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numbers>
#include <span>

#include "kernels/kernels.h"
#include "optim/accumulate.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tests/testing.h"

using namespace engine;
using namespace optim;

namespace {

// torch.optim.AdamW's algorithm as its documentation writes it, for one element in double.
struct RefAdamW {
  double b1, b2, eps, wd;
  std::vector<double> p, m, v;
  std::vector<bool> decay;
  int64_t t = 0;
  void step(const std::vector<double>& g_raw, double lr, double grad_scale) {
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = g_raw[i] * grad_scale;
      if (decay[i]) p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, double(t)));
      const double vhat = v[i] / (1 - std::pow(b2, double(t)));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

// A flat buffer of 23 elements: a 3x4 matrix, a bias of 4, a gap of 2, a 5x1 matrix.
std::vector<Segment> layout() {
  return {{"w", 0, 12, true}, {"b", 12, 4, false}, {"u", 18, 5, true}};
}

std::filesystem::path temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("avey_test_optim_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST_CASE("optim: AdamW step 1 and 2 equal hand-derived values") {
  // With m = v = 0, step 1 gives m^ = g and v^ = g^2, so p -= lr * sign(g) (eps is negligible);
  // a constant gradient keeps m^ = g and v^ = g^2 at every step. lr 0.1, wd 0.1:
  //   decayed:     p1 = 1 * (1 - 0.01) - 0.1 = 0.89,   p2 = 0.89 * 0.99 - 0.1 = 0.7811
  //   not decayed: p1 = 1 - 0.1 = 0.9,                 p2 = 0.8
  // and the moments after step 1: m = 0.1 g = 0.05, v = 0.05 g^2 = 0.0125; after step 2:
  //   m = 0.9 * 0.05 + 0.05 = 0.095, v = 0.95 * 0.0125 + 0.0125 = 0.024375.
  Tensor p = Tensor::from(std::vector<float>{1, 1, 1, 1}, {4});
  AdamW opt(p, {{"w", 0, 2, true}, {"b", 2, 2, false}});
  Tensor g = Tensor::from(std::vector<float>{0.5f, -0.5f, 0.5f, -0.5f}, {4});
  opt.step(g, 0.1);
  testing::expect_close(p, Tensor::from(std::vector<double>{0.89, 1.09, 0.9, 1.1}, {4}), 1e-6, 0, "p1");
  testing::expect_close(opt.exp_avg(), Tensor::from(std::vector<double>{0.05, -0.05, 0.05, -0.05}, {4}), 1e-6, 0, "m1");
  testing::expect_close(opt.exp_avg_sq(), Tensor::full({4}, 0.0125, DType::F64), 1e-6, 0, "v1");
  opt.step(g, 0.1);
  testing::expect_close(p, Tensor::from(std::vector<double>{0.7811, 1.1791, 0.8, 1.2}, {4}), 1e-6, 0, "p2");
  testing::expect_close(opt.exp_avg(), Tensor::from(std::vector<double>{0.095, -0.095, 0.095, -0.095}, {4}), 1e-6, 0,
                        "m2");
  testing::expect_close(opt.exp_avg_sq(), Tensor::full({4}, 0.024375, DType::F64), 1e-6, 0, "v2");
  CHECK(opt.step_count() == 2);
  CHECK(opt.config().beta1 == 0.9);
  CHECK(opt.config().beta2 == 0.95);
  CHECK(opt.config().eps == 1e-12);
  CHECK(opt.config().weight_decay == 0.1);
}

TEST_CASE("optim: AdamW over 5 steps matches PyTorch's algorithm (decay on matrices only, bias correction)") {
  Rng rng(7);
  const int64_t n = 23;
  const auto segs = layout();
  std::vector<double> p0(n);
  for (double& x : p0) x = rng.normal();
  RefAdamW ref{0.9, 0.95, 1e-12, 0.1, p0, std::vector<double>(n, 0), std::vector<double>(n, 0),
               std::vector<bool>(n, false)};
  for (const Segment& s : segs)
    for (int64_t i = s.offset; i < s.offset + s.numel; ++i) ref.decay[size_t(i)] = s.decay;
  Tensor p = Tensor::from(std::vector<float>(p0.begin(), p0.end()), {n});
  AdamW opt(p, segs);
  Tensor half = Tensor::zeros({n}, DType::BF16);
  const double lrs[5] = {1e-3, 2e-2, 5e-2, 3e-2, 1e-1};
  const double scales[5] = {1.0, 0.5, 1.0, 0.25, 1.0};
  for (int t = 0; t < 5; ++t) {
    CAPTURE(t);
    std::vector<double> g(n);
    for (double& x : g) x = rng.normal() * (t + 1);
    std::vector<float> gf(g.begin(), g.end());
    std::vector<double> gd(gf.begin(), gf.end());  // the reference sees the same f32 gradient
    ref.step(gd, lrs[t], scales[t]);
    opt.step(Tensor::from(gf, {n}), lrs[t], scales[t], half);
    testing::expect_close(p, Tensor::from(ref.p, {n}), 1e-5, 1e-7, "p");
    testing::expect_close(opt.exp_avg(), Tensor::from(ref.m, {n}), 1e-5, 1e-7, "m");
    testing::expect_close(opt.exp_avg_sq(), Tensor::from(ref.v, {n}), 1e-5, 1e-7, "v");
    // the bf16 working copy is bf16(p), bit for bit
    auto pf = p.to_vector<float>();
    auto hb = half.to_vector<bf16>();
    for (int64_t i = 0; i < n; ++i) CHECK(hb[size_t(i)].bits == kernels::to_bf16(pf[size_t(i)]).bits);
  }
  CHECK(opt.step_count() == 5);
}

TEST_CASE("optim: the AdamW kernel in double equals the reference to rounding") {
  Rng rng(3);
  const int64_t n = 1000;
  std::vector<double> p(n), m(n, 0), v(n, 0);
  for (double& x : p) x = rng.normal();
  std::vector<uint8_t> mask(n);
  for (int64_t i = 0; i < n; ++i) mask[size_t(i)] = uint8_t(i % 3 != 0);
  RefAdamW ref{0.9, 0.95, 1e-8, 0.1, p, m, v, std::vector<bool>(n)};
  for (int64_t i = 0; i < n; ++i) ref.decay[size_t(i)] = mask[size_t(i)];
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> g(n);
    for (double& x : g) x = rng.normal();
    const double lr = 0.01 * t;
    ref.step(g, lr, 0.7);
    const double scale = 0.7;
    kernels::cpu::adamw<double>({.n = n, .p = p.data(), .g = g.data(), .m = m.data(), .v = v.data(),
                                 .decay = mask.data(), .lr = lr, .b1 = 0.9, .b2 = 0.95, .eps = 1e-8, .wd = 0.1,
                                 .bias1 = 1 - std::pow(0.9, t), .bias2 = 1 - std::pow(0.95, t), .grad_scale = &scale});
  }
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(p[size_t(i)] - ref.p[size_t(i)]));
  CHECK(worst < 1e-13);
}

TEST_CASE("optim: AdamW without segments decays every element, grad_scale equals pre-scaled gradients") {
  Tensor p = Tensor::from(std::vector<float>{2, -2}, {2});
  AdamW all(p, {});
  all.step(Tensor::from(std::vector<float>{1, 1}, {2}), 0.1);
  testing::expect_close(p, Tensor::from(std::vector<double>{2 * 0.99 - 0.1, -2 * 0.99 - 0.1}, {2}), 1e-6, 0);

  Rng rng(5);
  Tensor a = Tensor::randn({300}, rng), b = a.clone();
  Tensor g = Tensor::randn({300}, rng);
  AdamW oa(a, {{"x", 0, 200, true}});
  AdamW ob(b, {{"x", 0, 200, true}});
  const float s = 0.3f;
  Tensor gs = Tensor::from(g.to_vector<float>(), {300});
  for (float& x : std::span(gs.data<float>(), 300)) x *= s;
  for (int t = 0; t < 3; ++t) {
    oa.step(g, 0.01, s);
    ob.step(gs, 0.01, 1.0);
  }
  CHECK(a.to_vector<float>() == b.to_vector<float>());
}

TEST_CASE("optim: AdamW rejects mismatched buffers and bad segments") {
  Tensor p = Tensor::zeros({10});
  CHECK_THROWS_WITH_AS(AdamW(p, {{"w", 5, 6, true}}), doctest::Contains("outside"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(AdamW(p, {{"a", 0, 6, true}, {"b", 5, 2, false}}), doctest::Contains("overlap"),
                       std::invalid_argument);
  CHECK_THROWS_AS(AdamW(Tensor::zeros({10}, DType::F64), {}), std::invalid_argument);
  AdamW opt(p, {});
  CHECK_THROWS_WITH_AS(opt.step(Tensor::zeros({9}), 0.1), doctest::Contains("grads must be f32"),
                       std::invalid_argument);
  CHECK_THROWS_AS(opt.step(Tensor::zeros({10}), 0.1, 1.0, Tensor::zeros({10})), std::invalid_argument);
  CHECK(opt.step_count() == 0);
}

TEST_CASE("optim: schedules at their key steps") {
  const double P = 1e-3;
  Schedule cos{ScheduleKind::Cosine, P, 0, 100, 0.1};
  cos.validate();
  CHECK(cos.lr_at(0) == doctest::Approx(P).epsilon(1e-12));
  CHECK(cos.lr_at(25) == doctest::Approx(P * (0.1 + 0.9 * (1 + std::sqrt(0.5)) / 2)).epsilon(1e-12));
  CHECK(cos.lr_at(50) == doctest::Approx(5.5e-4).epsilon(1e-12));
  CHECK(cos.lr_at(100) == doctest::Approx(1e-4).epsilon(1e-12));  // the floor: 10% of peak
  CHECK(cos.lr_at(1000) == doctest::Approx(1e-4).epsilon(1e-12));  // and it stays there
  for (int s = 1; s <= 100; ++s) CHECK(cos.lr_at(s) <= cos.lr_at(s - 1));

  Schedule warm{ScheduleKind::Cosine, P, 10, 110, 0.1};
  CHECK(warm.lr_at(0) == 0.0);
  CHECK(warm.lr_at(5) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(warm.lr_at(10) == doctest::Approx(P).epsilon(1e-12));  // warm-up end: the peak
  CHECK(warm.lr_at(60) == doctest::Approx(5.5e-4).epsilon(1e-12));
  CHECK(warm.lr_at(110) == doctest::Approx(1e-4).epsilon(1e-12));

  Schedule wc{ScheduleKind::WarmupCosine, P, 10, 110, 0.1};  // floor ignored: decays to 0
  CHECK(wc.lr_at(3) == doctest::Approx(3e-4).epsilon(1e-12));
  CHECK(wc.lr_at(10) == doctest::Approx(P).epsilon(1e-12));
  CHECK(wc.lr_at(60) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(std::abs(wc.lr_at(110)) < 1e-18);
  CHECK(std::abs(wc.lr_at(500)) < 1e-18);

  Schedule c{ScheduleKind::Constant, P, 0, 0, 0.1};
  c.validate();
  CHECK(c.lr_at(0) == P);
  CHECK(c.lr_at(123456) == P);
  Schedule cw{ScheduleKind::Constant, P, 4, 0, 0};
  CHECK(cw.lr_at(2) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(cw.lr_at(4) == P);

  CHECK(parse_schedule_kind("warmup_cosine") == ScheduleKind::WarmupCosine);
  CHECK(to_string(ScheduleKind::Cosine) == "cosine");
  CHECK_THROWS_WITH_AS(parse_schedule_kind("step"), doctest::Contains("unknown kind 'step'"),
                       std::invalid_argument);
  // linear (transformers' get_linear_schedule_with_warmup): up over W steps, down to 0 at N
  Schedule lin{parse_schedule_kind("linear"), P, 10, 110, 0.1};
  lin.validate();
  CHECK(lin.lr_at(0) == 0.0);
  CHECK(lin.lr_at(5) == doctest::Approx(P / 2).epsilon(1e-12));
  CHECK(lin.lr_at(10) == doctest::Approx(P).epsilon(1e-12));
  CHECK(lin.lr_at(60) == doctest::Approx(P / 2).epsilon(1e-12));
  CHECK(lin.lr_at(110) == 0.0);
  CHECK(lin.lr_at(200) == 0.0);
  CHECK_THROWS_WITH_AS((Schedule{ScheduleKind::Cosine, P, 10, 10, 0.1}.validate()),
                       doctest::Contains("total_steps > warmup_steps"), std::invalid_argument);
  CHECK_THROWS_AS((Schedule{ScheduleKind::Cosine, P, 0, 100, 1.5}.validate()), std::invalid_argument);
  CHECK_THROWS_AS((Schedule{ScheduleKind::Constant, -1, 0, 0, 0}.validate()), std::invalid_argument);
}

TEST_CASE("optim: gradient norm, clip coefficient and per-segment norms") {
  Tensor g = Tensor::from(std::vector<float>{3, 4, 0, 12}, {4});
  CHECK(grad_norm(g) == doctest::Approx(13.0).epsilon(1e-15));
  ClipResult r = clip_grad_norm(g, 1.0);
  CHECK(r.norm() == doctest::Approx(13.0).epsilon(1e-15));
  CHECK(r.scale() == doctest::Approx(1.0 / (13.0 + 1e-6)).epsilon(1e-15));
  CHECK(r.norm() == grad_norm(g));                 // the same sum, the same bits
  CHECK(clip_grad_norm(g, 100.0).scale() == 1.0);  // never scales up
  CHECK(clip_grad_norm(g, 0.0).scale() == 1.0);
  CHECK(clip_scale(13.0, 0.0) == 1.0);           // max_norm <= 0: no clipping
  CHECK(std::isnan(clip_scale(std::numeric_limits<double>::quiet_NaN(), 1.0)));
  CHECK(clip_scale(std::numeric_limits<double>::infinity(), 1.0) == 0.0);

  auto segs = segment_norms(g, {{"a", 0, 2, true}, {"b", 3, 1, false}, {"empty", 2, 0, false}});
  REQUIRE(segs.size() == 3);
  CHECK(segs[0] == doctest::Approx(5.0).epsilon(1e-15));
  CHECK(segs[1] == doctest::Approx(12.0).epsilon(1e-15));
  CHECK(segs[2] == 0.0);
  CHECK_THROWS_AS(segment_norms(g, {{"bad", 3, 2, false}}), std::invalid_argument);
  CHECK_THROWS_AS(grad_norm(Tensor::zeros({2}, DType::I32)), std::invalid_argument);

  // A large buffer: the fp64 sum is exact to rounding, and independent of the thread count.
  Rng rng(11);
  const int64_t n = 1'000'003;
  Tensor big = Tensor::randn({n}, rng);
  auto v = big.to_vector<float>();
  long double ref = 0;
  for (float x : v) ref += (long double)x * x;
  const double norm = grad_norm(big);
  CHECK(norm == doctest::Approx(double(std::sqrt(ref))).epsilon(1e-13));
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = grad_norm(big);
  const auto seg_one = segment_norms(big, {{"x", 5, 700'000, true}});
  omp_set_num_threads(std::max(2, threads));
  CHECK(grad_norm(big) == one);
  CHECK(segment_norms(big, {{"x", 5, 700'000, true}})[0] == seg_one[0]);
  omp_set_num_threads(threads);
  CHECK(norm == one);
}

TEST_CASE("optim: AdamW state save/load round trip continues bit-identically") {
  Rng rng(2);
  const int64_t n = 23;
  Tensor p = Tensor::randn({n}, rng);
  AdamW a(p, layout());
  std::vector<Tensor> grads;
  for (int t = 0; t < 5; ++t) grads.push_back(Tensor::randn({n}, rng));
  for (int t = 0; t < 3; ++t) a.step(grads[size_t(t)], 1e-2);
  const auto path = temp_file("state.bin");
  a.save_state(path.string());
  CHECK(!std::filesystem::exists(path.string() + ".tmp"));

  Tensor q = p.clone();
  AdamW b(q, layout());
  b.load_state(path.string());
  CHECK(b.step_count() == 3);
  CHECK(b.exp_avg().to_vector<float>() == a.exp_avg().to_vector<float>());
  CHECK(b.exp_avg_sq().to_vector<float>() == a.exp_avg_sq().to_vector<float>());
  for (int t = 3; t < 5; ++t) {
    a.step(grads[size_t(t)], 1e-2);
    b.step(grads[size_t(t)], 1e-2);
  }
  CHECK(p.to_vector<float>() == q.to_vector<float>());
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("optim: a corrupt or mismatched optimizer state file is one clear error and changes nothing") {
  Rng rng(4);
  const int64_t n = 23;
  Tensor p = Tensor::randn({n}, rng);
  AdamW a(p, layout());
  a.step(Tensor::randn({n}, rng), 1e-2);
  const auto path = temp_file("good.bin");
  a.save_state(path.string());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(bytes.size() == 64 + 23 * 8 + 8);
  auto write = [&](const std::string& name, const std::string& content) {
    auto f = temp_file(name);
    std::ofstream(f, std::ios::binary) << content;
    return f.string();
  };
  AdamW b(Tensor::zeros({n}), layout());
  auto expect_error = [&](const std::string& file, const std::string& what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(b.load_state(file), doctest::Contains(what.c_str()), std::runtime_error);
    CHECK(b.step_count() == 0);
    CHECK(b.exp_avg().to_vector<float>() == std::vector<float>(n, 0.0f));
  };
  expect_error(write("truncated.bin", bytes.substr(0, bytes.size() - 10)), "truncated (expected 256 bytes, got 246)");
  expect_error(write("header.bin", bytes.substr(0, 20)), "truncated");
  expect_error(write("empty.bin", ""), "truncated");
  std::string flipped = bytes;
  flipped[100] ^= 0x10;
  expect_error(write("flipped.bin", flipped), "checksum mismatch");
  std::string magic = bytes;
  magic[0] = 'X';
  expect_error(write("magic.bin", magic), "no AVEYOPT1 magic");
  std::string version = bytes;
  version[8] = 7;
  expect_error(write("version.bin", version), "format version 7");
  expect_error(write("trailing.bin", bytes + "x"), "trailing bytes");
  expect_error(temp_file("missing.bin").string(), "cannot open");
  AdamW other(Tensor::zeros({n + 1}), {});
  CHECK_THROWS_WITH_AS(other.load_state(path.string()), doctest::Contains("for 23 parameters, the model has 24"),
                       std::runtime_error);
  b.load_state(path.string());  // the intact file still loads
  CHECK(b.step_count() == 1);
  std::filesystem::remove_all(path.parent_path());
}

TEST_CASE("optim: gradient accumulation steps from a token batch size") {
  GradAccum g = grad_accum(524288, 8, 1024);  // the paper's 0.5M-token batch
  CHECK(g.steps == 64);
  CHECK(g.loss_scale == 1.0 / 64);
  CHECK(grad_accum(4096, 4, 1024).steps == 1);
  CHECK_THROWS_WITH_AS(grad_accum(500000, 8, 1024),
                       doctest::Contains("nearest: 499712 (61 micro-batches) or 507904 (62 micro-batches)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(grad_accum(1000, 8, 1024), doctest::Contains("nearest: 8192 (1 micro-batches)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(grad_accum(0, 8, 1024), std::invalid_argument);
  CHECK_THROWS_AS(grad_accum(4096, -1, 1024), std::invalid_argument);
}
