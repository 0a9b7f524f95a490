// Helpers shared by the tests: random inputs, closeness checks, gradient checks.
#pragma once
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/gradcheck.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace testing {

using engine::DType;
using engine::Shape;
using engine::Tensor;

// A CPU f64 leaf with standard-normal entries (optionally kept away from 0 by `margin`, for
// functions with a kink or a pole there, e.g. relu or 1/x).
inline Tensor random_leaf(const Shape& shape, engine::Rng& rng, double margin = 0.0, bool positive = false) {
  std::vector<double> v(size_t(engine::numel(shape)));
  for (double& x : v) {
    x = rng.normal();
    if (positive) x = std::abs(x);
    if (margin > 0 && std::abs(x) < margin) x = x < 0 ? x - margin : x + margin;
  }
  Tensor t = Tensor::from(v, shape);
  t.requires_grad_();
  return t;
}

// Normwise relative difference ||a - b|| / ||b|| over two tensors of the same shape (any dtype).
inline double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto x = a.to(engine::Device::CPU).to(DType::F64).to_vector<double>();
  auto y = b.to(engine::Device::CPU).to(DType::F64).to_vector<double>();
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return INFINITY;
    d += (x[i] - y[i]) * (x[i] - y[i]);
    n += y[i] * y[i];
  }
  if (n == 0) return std::sqrt(d);
  return std::sqrt(d / n);
}

// Element-wise |a - b| <= atol + rtol * |b|, reporting the first failure.
inline void expect_close(const Tensor& a, const Tensor& b, double rtol, double atol, const std::string& what = "") {
  REQUIRE_MESSAGE(a.shape() == b.shape(), what << ": shapes " << a.describe() << " vs " << b.describe());
  auto x = a.to(engine::Device::CPU).to(DType::F64).to_vector<double>();
  auto y = b.to(engine::Device::CPU).to(DType::F64).to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    bool ok = std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]);
    if (!ok) {
      FAIL_CHECK(what << ": element " << i << " is " << x[i] << ", expected " << y[i]);
      return;
    }
  }
}

// Runs the fp64 finite-difference check and requires max relative error < tol.
inline void check_gradients(const engine::TensorFn& f, const std::vector<Tensor>& inputs, double tol = 1e-6) {
  engine::GradCheck r = engine::gradcheck(f, inputs);
  INFO(r.report);
  CHECK(r.max_error < tol);
}

// A scratch folder, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("avey-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }  // its path only
  std::string file(const std::string& name, const std::string& text) const {          // written with text
    std::string p = file(name);
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

// The message of the exception f throws (a test failure when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL("no exception thrown");
  return "";
}

}  // namespace testing
