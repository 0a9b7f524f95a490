// Every primitive op: a forward value against a hand- or Eigen-computed one, and an fp64
// finite-difference gradient check on random shapes (non-square and size-1 edges included).
//
// The gradient checks are one table: add an op by adding one entry.
#include <functional>

#include "tests/testing.h"

using namespace engine;
using testing::check_gradients;
using testing::random_leaf;

namespace {

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;  // one random f64 input per shape
  TensorFn f;
  double margin = 0.0;        // keep inputs this far from 0 (kinks, poles)
  bool positive = false;      // inputs > 0 (sqrt, log)
};

std::vector<OpCase> op_table() {
  auto I = [](int i) { return i; };
  (void)I;
  return {
      {"matmul 2d", {{3, 4}, {4, 5}}, [](auto& x) { return matmul(x[0], x[1]); }},
      {"matmul 2d aT", {{4, 3}, {4, 5}}, [](auto& x) { return matmul(x[0], x[1], true, false); }},
      {"matmul 2d bT", {{3, 4}, {5, 4}}, [](auto& x) { return matmul(x[0], x[1], false, true); }},
      {"matmul 2d aT bT", {{4, 3}, {5, 4}}, [](auto& x) { return matmul(x[0], x[1], true, true); }},
      {"matmul 1x1 edge", {{1, 1}, {1, 3}}, [](auto& x) { return matmul(x[0], x[1]); }},
      {"matmul batched", {{2, 3, 4}, {2, 4, 5}}, [](auto& x) { return matmul(x[0], x[1]); }},
      {"matmul batched aT bT", {{2, 4, 3}, {2, 5, 4}}, [](auto& x) { return matmul(x[0], x[1], true, true); }},
      {"matmul batch x weight", {{2, 3, 4}, {5, 4}}, [](auto& x) { return matmul(x[0], x[1], false, true); }},
      {"matmul batch aT x weight", {{2, 4, 3}, {4, 5}}, [](auto& x) { return matmul(x[0], x[1], true, false); }},
      {"matmul weight x batch", {{3, 4}, {2, 4, 5}}, [](auto& x) { return matmul(x[0], x[1]); }},
      {"transpose", {{2, 3, 4}}, [](auto& x) { return transpose(x[0]); }},
      {"add", {{3, 4}, {3, 4}}, [](auto& x) { return add(x[0], x[1]); }},
      {"add row bias", {{2, 3, 4}, {4}}, [](auto& x) { return add(x[0], x[1]); }},
      {"sub column", {{2, 3, 4}, {2, 3, 1}}, [](auto& x) { return sub(x[0], x[1]); }},
      {"mul scalar", {{3, 4}, {1}}, [](auto& x) { return mul(x[0], x[1]); }},
      {"mul row", {{5, 2}, {2}}, [](auto& x) { return mul(x[0], x[1]); }},
      {"div", {{3, 4}, {3, 4}}, [](auto& x) { return div(x[0], x[1]); }, 0.5},
      {"div column", {{3, 4}, {3, 1}}, [](auto& x) { return div(x[0], x[1]); }, 0.5},
      {"scale", {{3, 1}}, [](auto& x) { return scale(x[0], -2.5); }},
      {"add_scalar", {{1, 3}}, [](auto& x) { return add_scalar(x[0], 0.25); }},
      {"sum", {{3, 4}}, [](auto& x) { return sum(x[0]); }},
      {"mean", {{2, 5}}, [](auto& x) { return mean(x[0]); }},
      {"reshape", {{2, 6}}, [](auto& x) { return reshape(x[0], {3, 4}); }},
  };
}

}  // namespace

TEST_CASE("ops: every op passes an fp64 finite-difference gradient check") {
  Rng rng(1234);
  for (const OpCase& c : op_table()) {
    CAPTURE(c.name);
    std::vector<Tensor> inputs;
    for (const Shape& s : c.shapes) inputs.push_back(random_leaf(s, rng, c.margin, c.positive));
    check_gradients(c.f, inputs);
  }
}

TEST_CASE("ops: matmul forward equals a hand-computed product") {
  Tensor a = Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from(std::vector<float>{7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(matmul(a, b).to_vector<float>() == std::vector<float>{58, 64, 139, 154});
  CHECK(matmul(b, a, true, true).to_vector<float>() == std::vector<float>{58, 139, 64, 154});
  Tensor batch = Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0}, {2, 2, 3});
  CHECK(matmul(batch, b).to_vector<float>() == std::vector<float>{58, 64, 139, 154, 7, 8, 9, 10});
}

TEST_CASE("ops: broadcasting arithmetic forward values") {
  Tensor a = Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(add(a, Tensor::from(std::vector<float>{10, 20, 30}, {3})).to_vector<float>() ==
        std::vector<float>{11, 22, 33, 14, 25, 36});
  CHECK(mul(a, Tensor::from(std::vector<float>{2, -1}, {2, 1})).to_vector<float>() ==
        std::vector<float>{2, 4, 6, -4, -5, -6});
  CHECK(div(a, Tensor::from(std::vector<float>{2}, {1})).to_vector<float>() ==
        std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
  CHECK(sum(a).item() == 21.0);
  CHECK(mean(a).item() == 3.5);
}
