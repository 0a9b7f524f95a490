// Forward values of the primitive ops against hand-computed ones (plain loops in double, or
// numbers worked out by hand), edge cases (all targets ignored, zero rows, huge logits), the
// errors that bad arguments raise, determinism across thread counts, and that no op keeps its
// own output alive through its backward.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include "engine/fused_ops.h"
#include "tests/testing.h"

using namespace engine;
using testing::expect_close;

namespace {

using Vec = std::vector<double>;

Tensor f64(const Vec& v, const Shape& s) { return Tensor::from(v, s); }
Tensor i32(const std::vector<int32_t>& v, const Shape& s) { return Tensor::from(v, s); }

Vec random_vec(size_t n, uint64_t seed) {
  Rng rng(seed);
  Vec v(n);
  for (double& x : v) x = rng.normal();
  return v;
}

// Applies f to every element.
Vec map(const Vec& x, const std::function<double(double)>& f) {
  Vec y(x.size());
  std::transform(x.begin(), x.end(), y.begin(), f);
  return y;
}

// Both dtypes: the f64 op against the reference with a tight tolerance, the f32 op loosely.
void check_both(const std::function<Tensor(const Tensor&)>& op, const Vec& x, const Shape& s, const Vec& expected,
                const Shape& out_shape, const std::string& what) {
  Tensor want = f64(expected, out_shape);
  expect_close(op(f64(x, s)), want, 1e-12, 1e-12, what + " f64");
  expect_close(op(f64(x, s).to(DType::F32)), want, 1e-5, 1e-6, what + " f32");
}

}  // namespace

TEST_CASE("ops forward: element-wise functions") {
  const Vec x = {-2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 4.5};
  const Vec pos = {0.1, 0.5, 1.0, 2.0, 4.0, 9.0};
  const Shape s = {2, 4}, sp = {3, 2};
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  check_both([](auto& t) { return relu(t); }, x, s, map(x, [](double v) { return v > 0 ? v : 0.0; }), s, "relu");
  check_both([](auto& t) { return relu2(t); }, x, s, map(x, [](double v) { return v > 0 ? v * v : 0.0; }), s, "relu2");
  check_both([](auto& t) { return gelu(t); }, x, s,
             map(x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }), s, "gelu");
  check_both([](auto& t) { return silu(t); }, x, s, map(x, [&](double v) { return v * sig(v); }), s, "silu");
  check_both([](auto& t) { return engine::tanh(t); }, x, s, map(x, [](double v) { return std::tanh(v); }), s, "tanh");
  check_both([](auto& t) { return engine::exp(t); }, x, s, map(x, [](double v) { return std::exp(v); }), s, "exp");
  check_both([](auto& t) { return square(t); }, x, s, map(x, [](double v) { return v * v; }), s, "square");
  check_both([](auto& t) { return engine::sqrt(t); }, pos, sp, map(pos, [](double v) { return std::sqrt(v); }), sp,
             "sqrt");
  check_both([](auto& t) { return rsqrt(t); }, pos, sp, map(pos, [](double v) { return 1 / std::sqrt(v); }), sp,
             "rsqrt");
  check_both([](auto& t) { return engine::log(t); }, pos, sp, map(pos, [](double v) { return std::log(v); }), sp,
             "log");
  // Hand values: gelu(1) = 0.5 (1 + erf(1/sqrt2)) = 0.8413447460685429; silu(1) = 1 / (1 + e^-1).
  CHECK(gelu(f64({1.0}, {1})).item() == doctest::Approx(0.8413447460685429).epsilon(1e-15));
  CHECK(silu(f64({1.0}, {1})).item() == doctest::Approx(0.7310585786300049).epsilon(1e-15));
  // Silu of large magnitudes does not overflow: silu(-1000) = -0, silu(1000) = 1000.
  auto big = silu(Tensor::from(std::vector<float>{-1000.f, 1000.f}, {2})).to_vector<float>();
  CHECK(big[0] == 0.0f);
  CHECK(big[1] == 1000.0f);
}

TEST_CASE("ops forward: tril") {
  Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {1, 3, 4});
  CHECK(tril(x).to_vector<double>() == Vec{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  CHECK(tril(x, 1).to_vector<double>() == Vec{1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  CHECK(tril(x, -1).to_vector<double>() == Vec{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  CHECK_THROWS_WITH_AS(tril(f64({1, 2}, {2})), doctest::Contains("tril: needs at least 2 dims"), std::invalid_argument);
}

TEST_CASE("ops forward: softmax, including huge values") {
  // softmax(1, 2, 3) = e^(x - 3) / (e^-2 + e^-1 + 1)
  const double z = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  Vec want = {std::exp(-2.0) / z, std::exp(-1.0) / z, 1.0 / z};
  expect_close(softmax(f64({1, 2, 3}, {1, 3})), f64(want, {1, 3}), 1e-14, 0, "softmax");
  // The same row shifted by 1000 (exp(1000) overflows without the max subtraction).
  Tensor big = Tensor::from(std::vector<float>{1001, 1002, 1003, -1e30f, 0, 1e30f}, {2, 3});
  Tensor y = softmax(big);
  expect_close(y.view(0, {1, 3}), f64(want, {1, 3}), 1e-6, 0, "softmax of 1000+");
  CHECK(y.to_vector<float>()[5] == 1.0f);
  CHECK(y.to_vector<float>()[3] == 0.0f);
}

TEST_CASE("ops forward: rmsnorm and layernorm against plain loops") {
  const int64_t rows = 3, cols = 5;
  Vec x = random_vec(rows * cols, 1), g = random_vec(cols, 2), b = random_vec(cols, 3);
  const double eps = 1e-5;
  Vec rms(x.size()), ln(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0, mu = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) ss += x[r * cols + c] * x[r * cols + c], mu += x[r * cols + c];
    mu /= cols;
    for (int64_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mu) * (x[r * cols + c] - mu);
    var /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      rms[r * cols + c] = x[r * cols + c] / std::sqrt(ss / cols + eps) * g[c];
      ln[r * cols + c] = (x[r * cols + c] - mu) / std::sqrt(var + eps) * g[c] + b[c];
    }
  }
  Tensor G = f64(g, {cols}), B = f64(b, {cols});
  check_both([&](auto& t) { return rmsnorm(t, G.to(t.dtype()), eps); }, x, {rows, cols}, rms, {rows, cols}, "rmsnorm");
  check_both([&](auto& t) { return layernorm(t, G.to(t.dtype()), B.to(t.dtype()), eps); }, x, {rows, cols}, ln,
             {rows, cols}, "layernorm");
  // Hand values: rmsnorm of (3, 4) with eps 0: rms = sqrt(12.5), y = (3, 4) / sqrt(12.5).
  expect_close(rmsnorm(f64({3, 4}, {1, 2}), f64({1, 1}, {2}), 0.0), f64({0.848528137423857, 1.131370849898476}, {1, 2}),
               1e-14, 0, "rmsnorm by hand");
  // layernorm of (1, 3) with eps 0: mean 2, var 1, y = (-1, 1).
  expect_close(layernorm(f64({1, 3}, {1, 2}), f64({1, 1}, {2}), Tensor(), 0.0), f64({-1, 1}, {1, 2}), 1e-14, 0,
               "layernorm by hand");
  CHECK_THROWS_WITH_AS(rmsnorm(f64(x, {rows, cols}), f64({1, 2}, {2}), eps),
                       doctest::Contains("rmsnorm: gain must be [5] (the last dim of f64[3, 5] cpu), got f64[2] cpu"),
                       std::invalid_argument);
}

TEST_CASE("ops forward: l2norm_rows in its three eps modes, and zero rows") {
  // Row (3, 4): norm 5.
  Tensor x = f64({3, 4, 0, 0}, {2, 2});
  const double eps = 0.5;
  expect_close(l2norm_rows(x, eps, NormEps::Outside), f64({3 / 5.5, 4 / 5.5, 0, 0}, {2, 2}), 1e-15, 0, "outside");
  expect_close(l2norm_rows(x, eps, NormEps::Inside), f64({3 / std::sqrt(25.5), 4 / std::sqrt(25.5), 0, 0}, {2, 2}),
               1e-15, 0, "inside");
  expect_close(l2norm_rows(x, eps, NormEps::Max), f64({0.6, 0.8, 0, 0}, {2, 2}), 1e-15, 0, "max");
  expect_close(l2norm_rows(x, 10.0, NormEps::Max), f64({0.3, 0.4, 0, 0}, {2, 2}), 1e-15, 0, "max, eps wins");
  // A zero row stays exactly zero and its gradient is finite, for Outside and Max (and eps 0).
  for (NormEps mode : {NormEps::Outside, NormEps::Max}) {
    for (double e : {1e-6, 0.0}) {
      Tensor z = Tensor::zeros({2, 3}, DType::F64);
      z.requires_grad_();
      Tensor y = l2norm_rows(z, e, mode);
      CHECK(y.to_vector<double>() == Vec(6, 0.0));
      sum(y).backward();
      for (double v : z.grad().to_vector<double>()) CHECK(std::isfinite(v));
    }
  }
}

TEST_CASE("ops forward: reductions over the last dim keep a trailing 1") {
  Tensor x = f64({1, 5, 5, -2, 7, 0}, {2, 3});
  Tensor s = row_sums(x), m = row_means(x), mx = row_max(x);
  CHECK(s.shape() == Shape{2, 1});
  CHECK(s.to_vector<double>() == Vec{11, 5});
  expect_close(m, f64({11.0 / 3, 5.0 / 3}, {2, 1}), 1e-15, 0, "row_means");
  CHECK(mx.to_vector<double>() == Vec{5, 7});
  CHECK(row_sums(f64({1, 2, 3}, {3})).shape() == Shape{1});
  // The gradient of max goes to the first arg-max only (the tie at columns 1 and 2).
  x.requires_grad_();
  sum(row_max(x)).backward();
  CHECK(x.grad().to_vector<double>() == Vec{0, 1, 0, 0, 1, 0});
  CHECK(row_max(Tensor::from(std::vector<float>{-3, -1, -2}, {3})).item() == -1.0);
}

TEST_CASE("ops forward: slices, concatenation, split") {
  Tensor x = f64({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor r = slice_rows(x, 1, 3);
  CHECK(r.shape() == Shape{2, 4});
  CHECK(r.to_vector<double>() == Vec{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(r.impl()->storage == x.impl()->storage);  // a view
  Tensor c = slice_cols(x, 1, 3);
  CHECK(c.to_vector<double>() == Vec{1, 2, 5, 6, 9, 10});
  CHECK(c.impl()->storage != x.impl()->storage);  // a copy
  CHECK(slice_cols(x, 2, 2).shape() == Shape{3, 0});
  Tensor cc = concat_cols({c, slice_cols(x, 0, 1)});
  CHECK(cc.to_vector<double>() == Vec{1, 2, 0, 5, 6, 4, 9, 10, 8});
  Tensor cr = concat_rows({slice_rows(x, 2, 3), slice_rows(x, 0, 1)});
  CHECK(cr.to_vector<double>() == Vec{8, 9, 10, 11, 0, 1, 2, 3});
  auto parts = split_cols(x, {1, 3});
  CHECK(parts.size() == 2);
  CHECK(parts[0].to_vector<double>() == Vec{0, 4, 8});
  CHECK(parts[1].to_vector<double>() == Vec{1, 2, 3, 5, 6, 7, 9, 10, 11});
  CHECK_THROWS_WITH_AS(slice_rows(x, 2, 4), doctest::Contains("slice_rows: rows [2, 4) are not inside f64[3, 4] cpu"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(slice_cols(x, 3, 2), doctest::Contains("slice_cols: columns [3, 2)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(split_cols(x, {1, 2}), doctest::Contains("split_cols: widths sum to 3 but f64[3, 4] cpu has 4"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(concat_cols({x, f64({1, 2}, {2, 1})}), doctest::Contains("concat_cols: leading dims differ"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(concat_rows({x, f64({1, 2}, {1, 2})}), doctest::Contains("concat_rows: trailing dims differ"),
                       std::invalid_argument);
}

TEST_CASE("ops forward: gather_rows, and an index out of range") {
  Tensor table = f64({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor y = gather_rows(table, i32({2, 0, 2, 1}, {2, 2}));
  CHECK(y.shape() == Shape{2, 2, 2});
  CHECK(y.to_vector<double>() == Vec{20, 21, 0, 1, 20, 21, 10, 11});
  table.requires_grad_();
  sum(gather_rows(table, i32({2, 0, 2}, {3}))).backward();
  CHECK(table.grad().to_vector<double>() == Vec{1, 1, 0, 0, 2, 2});
  CHECK_THROWS_WITH_AS(gather_rows(table, i32({0, 3}, {2})),
                       doctest::Contains("gather_rows: index 3 at position 1 is out of range for table f64[3, 2] cpu"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gather_rows(table, i32({-1}, {1})), doctest::Contains("gather_rows: index -1"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gather_rows(table, f64({0}, {1})), doctest::Contains("gather_rows: index must be i32"),
                       std::invalid_argument);
}

TEST_CASE("ops forward: cast is differentiable and casts the gradient back") {
  Tensor x = Tensor::from(std::vector<float>{1.5f, -2.0f}, {2});
  x.requires_grad_();
  Tensor y = cast(x, DType::F64);
  CHECK(y.dtype() == DType::F64);
  CHECK(y.to_vector<double>() == Vec{1.5, -2.0});
  sum(scale(y, 3.0)).backward();
  CHECK(x.grad().dtype() == DType::F32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 3});
  Tensor b = cast(x, DType::BF16);  // 1.5 and -2 are exact in bf16
  CHECK(b.dtype() == DType::BF16);
  CHECK(cast(b, DType::F32).to_vector<float>() == std::vector<float>{1.5f, -2.0f});
}

TEST_CASE("ops forward: cross_entropy against log-softmax by hand, ignored rows, all ignored") {
  // Row 0: logits (1, 2, 3), target 2: loss = log(e + e^2 + e^3) - 3. Row 1 ignored. Row 2:
  // logits (0, 0, 0), target 0: loss = log 3. Mean over the 2 counted rows.
  Tensor logits = f64({1, 2, 3, 5, 5, 5, 0, 0, 0}, {3, 3});
  Tensor targets = i32({2, -100, 0}, {3});
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0, l2 = std::log(3.0);
  CHECK(cross_entropy(logits, targets).item() == doctest::Approx((l0 + l2) / 2).epsilon(1e-14));
  CHECK(cross_entropy(logits.to(DType::F32), targets).item() == doctest::Approx((l0 + l2) / 2).epsilon(1e-6));
  // Huge logits: no overflow.
  Tensor big = Tensor::from(std::vector<float>{1e4f, 1e4f + 1, 1e4f + 2}, {1, 3});
  CHECK(cross_entropy(big, i32({2}, {1})).item() == doctest::Approx(std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0)).epsilon(1e-6));
  // The gradient: (softmax - onehot) / 2 on counted rows, zero on the ignored one.
  logits.requires_grad_();
  cross_entropy(logits, targets).backward();
  auto g = logits.grad().to_vector<double>();
  CHECK(g[3] == 0);
  CHECK(g[4] == 0);
  CHECK(g[6] == doctest::Approx((1.0 / 3 - 1) / 2));
  CHECK(g[7] == doctest::Approx(1.0 / 6));
  // Every row ignored: the loss is 0 (not NaN) and the gradient is 0.
  Tensor z = f64({1, 2, 3, 4}, {2, 2});
  z.requires_grad_();
  Tensor loss = cross_entropy(z, i32({-100, -100}, {2}));
  CHECK(loss.shape() == Shape{1});
  CHECK(loss.item() == 0.0);
  loss.backward();
  CHECK(z.grad().to_vector<double>() == Vec{0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(cross_entropy(z, i32({0, 2}, {2})),
                       doctest::Contains("cross_entropy: target 2 at row 1 is outside the vocabulary of 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(z, i32({0, 1, 1}, {3})), doctest::Contains("cross_entropy: targets i32[3] cpu"),
                       std::invalid_argument);
}

TEST_CASE("ops forward: triangular products against the full ones (kernels::Triangle)") {
  using kernels::Triangle;
  const int64_t N = 3, C = 150, h = 40;  // C: two whole 64-row tiles and a partial one
  auto product = [&](const Tensor& a, const Tensor& b, bool ta, bool tb, Triangle t) {
    const int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1), n = tb ? b.size(-2) : b.size(-1);
    Tensor c = Tensor::full({N, m, n}, 7.0, a.dtype());  // every element written
    auto batch = [](const Tensor& x) { return MatrixBatch{x, 0, x.ndim() == 3 ? x.size(1) * x.size(2) : 0}; };
    matmul_into(batch(a), batch(b), {c, 0, m * n}, N, m, n, k, ta, tb, 0.0, t);
    return c;
  };
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-12 : 2e-5;
    const Tensor x = f64(random_vec(size_t(N * C * h), 1), {N, C, h}).to(dt);
    const Tensor y = f64(random_vec(size_t(N * C * h), 2), {N, C, h}).to(dt);
    const Tensor l = tril(f64(random_vec(size_t(N * C * C), 3), {N, C, C})).to(dt);
    const Tensor shared = tril(f64(random_vec(size_t(C * C), 4), {C, C})).to(dt);
    // A lower triangular operand, batched or shared, and a transposed one (upper): the whole product
    expect_close(product(l, x, false, false, Triangle::LowerA), matmul(l, x), tol, tol, "LowerA");
    expect_close(product(shared, x, false, false, Triangle::LowerA), matmul(shared, x), tol, tol, "LowerA shared");
    expect_close(product(l, x, true, false, Triangle::UpperA), matmul(l, x, true, false), tol, tol, "UpperA");
    // Only C's lower triangle wanted: that triangle equals the full product's; above it, each
    // element is the full product's (a tile that reaches the diagonal) or zero.
    const Vec got = product(x, y, false, true, Triangle::LowerC).to(DType::F64).to_vector<double>();
    const Vec full = matmul(x, y, false, true).to(DType::F64).to_vector<double>();
    int64_t lower_off = 0, upper_other = 0, upper_zeros = 0;
    for (int64_t b = 0; b < N; ++b)
      for (int64_t i = 0; i < C; ++i)
        for (int64_t j = 0; j < C; ++j) {
          const size_t e = size_t((b * C + i) * C + j);
          const bool near = std::abs(got[e] - full[e]) <= tol * (1 + std::abs(full[e]));
          if (j <= i) lower_off += !near;
          else if (got[e] == 0) ++upper_zeros;
          else upper_other += !near;
        }
    CHECK(lower_off == 0);
    CHECK(upper_other == 0);
    CHECK(upper_zeros > N * C * C / 4);  // most of the upper half left out
  }
  const Tensor sq = Tensor::zeros({2, 4, 4}), wide = Tensor::zeros({2, 4, 6});
  CHECK_THROWS_WITH_AS(matmul_into({sq, 0, 16}, {wide, 0, 24}, {wide, 0, 24}, 2, 4, 6, 4, false, false, 0.0,
                                   kernels::Triangle::LowerC),
                       doctest::Contains("not square"), std::invalid_argument);
}

TEST_CASE("ops: reductions and scatters give the same bits with one thread or many") {
  const int64_t n = 20000, cols = 8, R = 50;
  Vec gv = random_vec(size_t(n * cols), 5);
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = int32_t((i * 7919) % R);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor table = Tensor::zeros({R, cols}, DType::F64);
    table.requires_grad_();
    Tensor g = f64(gv, {n, cols});
    backward(gather_rows(table, i32(idx, {n})), g);  // scatter_add_rows
    Tensor x = f64(gv, {n, cols}), gain = f64(Vec(cols, 1.5), {cols});
    gain.requires_grad_();
    backward(rmsnorm(x, gain, 1e-5), g);  // column sums of the gain gradient
    omp_set_num_threads(before);
    Vec out = table.grad().to_vector<double>(), gg = gain.grad().to_vector<double>();
    out.insert(out.end(), gg.begin(), gg.end());
    return out;
  };
  CHECK(run(1) == run(4));
}

TEST_CASE("ops: no op keeps its own output alive through its backward") {
  Tensor x = Tensor::from(random_vec(12, 9), {3, 4});
  x.requires_grad_();
  Tensor g = Tensor::from(Vec{1, 1, 1, 1}, {4});
  g.requires_grad_();
  const std::vector<std::pair<std::string, std::function<Tensor()>>> ops = {
      {"softmax", [&] { return softmax(x); }},
      {"rmsnorm", [&] { return rmsnorm(x, g, 1e-5); }},
      {"layernorm", [&] { return layernorm(x, g, g, 1e-5); }},
      {"l2norm", [&] { return l2norm_rows(x, 1e-5, NormEps::Max); }},
      {"gelu", [&] { return gelu(x); }},
      {"row_max", [&] { return row_max(x); }},
      {"slice_rows", [&] { return slice_rows(x, 1, 2); }},
      {"cross_entropy", [&] { return cross_entropy(x, i32({0, 1, 3}, {3})); }},
  };
  for (auto& [name, f] : ops) {
    CAPTURE(name);
    std::weak_ptr<TensorImpl> weak;
    {
      Tensor y = f();
      CHECK(y.requires_grad());
      weak = y.impl_ptr();
    }
    CHECK(weak.expired());
  }
}
