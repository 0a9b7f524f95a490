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
      // element-wise
      {"relu", {{3, 4}}, [](auto& x) { return relu(x[0]); }, 0.1},
      {"relu2", {{2, 3, 1}}, [](auto& x) { return relu2(x[0]); }, 0.1},
      {"gelu", {{3, 5}}, [](auto& x) { return gelu(x[0]); }},
      {"silu", {{4, 1}}, [](auto& x) { return silu(x[0]); }},
      {"tanh", {{1, 6}}, [](auto& x) { return engine::tanh(x[0]); }},
      {"sqrt", {{3, 4}}, [](auto& x) { return engine::sqrt(x[0]); }, 0.5, true},
      {"rsqrt", {{2, 3}}, [](auto& x) { return rsqrt(x[0]); }, 0.5, true},
      {"exp", {{3, 2}}, [](auto& x) { return engine::exp(x[0]); }},
      {"log", {{2, 5}}, [](auto& x) { return engine::log(x[0]); }, 0.5, true},
      {"square", {{5}}, [](auto& x) { return square(x[0]); }},
      {"unary by enum", {{2, 2}}, [](auto& x) { return unary(kernels::Unary::Silu, x[0]); }},
      {"tril", {{2, 3, 4}}, [](auto& x) { return tril(x[0]); }},
      {"tril diag -1", {{4, 3}}, [](auto& x) { return tril(x[0], -1); }},
      {"tril diag 1", {{1, 3, 5}}, [](auto& x) { return tril(x[0], 1); }},
      // rows
      {"softmax", {{3, 5}}, [](auto& x) { return softmax(x[0]); }},
      {"softmax 3d", {{2, 2, 7}}, [](auto& x) { return softmax(x[0]); }},
      {"softmax 1 col", {{2, 3, 1}}, [](auto& x) { return softmax(x[0]); }},
      {"rmsnorm", {{3, 5}, {5}}, [](auto& x) { return rmsnorm(x[0], x[1], 1e-5); }},
      {"rmsnorm 3d", {{2, 1, 4}, {4}}, [](auto& x) { return rmsnorm(x[0], x[1], 1e-3); }},
      {"rmsnorm 1 col", {{3, 1}, {1}}, [](auto& x) { return rmsnorm(x[0], x[1], 0.5); }},
      {"layernorm", {{4, 6}, {6}, {6}}, [](auto& x) { return layernorm(x[0], x[1], x[2], 1e-5); }},
      {"layernorm 3d", {{2, 3, 2}, {2}, {2}}, [](auto& x) { return layernorm(x[0], x[1], x[2], 1e-2); }},
      {"layernorm no bias", {{1, 5}, {5}}, [](auto& x) { return layernorm(x[0], x[1], Tensor(), 1e-5); }},
      {"l2norm outside", {{3, 4}}, [](auto& x) { return l2norm_rows(x[0], 1e-3, NormEps::Outside); }},
      {"l2norm inside", {{2, 2, 3}}, [](auto& x) { return l2norm_rows(x[0], 1e-3, NormEps::Inside); }},
      {"l2norm max", {{3, 5}}, [](auto& x) { return l2norm_rows(x[0], 1e-3, NormEps::Max); }},
      {"l2norm max (eps wins)", {{2, 3}}, [](auto& x) { return l2norm_rows(x[0], 100.0, NormEps::Max); }},
      {"l2norm 1 col", {{4, 1}}, [](auto& x) { return l2norm_rows(x[0], 1e-2, NormEps::Inside); }, 0.1},
      {"l1norm", {{3, 5}}, [](auto& x) { return l1norm_rows(x[0], 1e-12); }, 0.1},
      {"l1norm (eps wins)", {{2, 3}}, [](auto& x) { return l1norm_rows(x[0], 100.0); }, 0.1},
      // reductions
      {"row_sums", {{3, 4}}, [](auto& x) { return row_sums(x[0]); }},
      {"row_sums 1d", {{5}}, [](auto& x) { return row_sums(x[0]); }},
      {"row_means", {{2, 3, 4}}, [](auto& x) { return row_means(x[0]); }},
      {"row_max", {{3, 5}}, [](auto& x) { return row_max(x[0]); }},
      {"row_max 1 col", {{4, 1}}, [](auto& x) { return row_max(x[0]); }},
      // shapes, rows and columns
      {"slice_rows", {{5, 3}}, [](auto& x) { return slice_rows(x[0], 1, 4); }},
      {"slice_rows 1d all", {{4}}, [](auto& x) { return slice_rows(x[0], 0, 4); }},
      {"slice_rows 3d one", {{3, 2, 2}}, [](auto& x) { return slice_rows(x[0], 2, 3); }},
      {"slice_cols", {{3, 6}}, [](auto& x) { return slice_cols(x[0], 2, 5); }},
      {"slice_cols 3d one", {{2, 2, 4}}, [](auto& x) { return slice_cols(x[0], 0, 1); }},
      {"concat_cols", {{3, 2}, {3, 1}, {3, 4}}, [](auto& x) { return concat_cols({x[0], x[1], x[2]}); }},
      {"concat_cols 3d", {{2, 1, 2}, {2, 1, 3}}, [](auto& x) { return concat_cols({x[0], x[1]}); }},
      {"concat_rows", {{2, 3}, {1, 3}, {4, 3}}, [](auto& x) { return concat_rows({x[0], x[1], x[2]}); }},
      {"split_cols", {{3, 6}},
       [](auto& x) {
         auto p = split_cols(x[0], {1, 3, 2});
         return concat_cols({p[2], mul(p[0], p[0]), p[1]});
       }},
      {"gather_rows", {{5, 3}},
       [](auto& x) { return gather_rows(x[0], Tensor::from(std::vector<int32_t>{4, 0, 2, 4, 1, 4, 0, 3}, {2, 4})); }},
      {"gather_rows 1 col", {{3, 1}},
       [](auto& x) { return gather_rows(x[0], Tensor::from(std::vector<int32_t>{2, 2}, {2})); }},
      {"map_rows (repeats and zero rows; the backward sums)", {{5, 3}},
       [](auto& x) { return map_rows(x[0], gather_map({4, -1, 2, 4, 0, 4}, 5, Device::CPU)); }},
      {"cast same dtype", {{2, 3}}, [](auto& x) { return mul(cast(x[0], DType::F64), x[0]); }},
      // loss
      {"cross_entropy", {{4, 5}},
       [](auto& x) { return cross_entropy(x[0], Tensor::from(std::vector<int32_t>{0, 3, -100, 4}, {4})); }},
      {"cross_entropy 3d, ignore 7", {{2, 3, 4}},
       [](auto& x) {
         return cross_entropy(x[0], Tensor::from(std::vector<int32_t>{3, 7, 0, 1, 1, 2}, {2, 3}), 7);
       }},
      {"cross_entropy one row", {{1, 3}},
       [](auto& x) { return cross_entropy(x[0], Tensor::from(std::vector<int32_t>{1}, {1})); }},
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
