// Reading gradients layer by layer: Model::set_block_hook hands over dL/d(block output) for every
// block during backward, the same with the fused layers and with their op-by-op twins, in the
// packed layout of avey/packing.h (or the [N*C] one, unpacked).
#include <map>

#include "avey/model.h"
#include "tests/testing.h"

using namespace engine;

TEST_CASE("avey hooks: every block's output gradient reaches the block hook, fused == composed") {
  avey::Config cfg;
  cfg.vocab_size = 13;
  cfg.d_embed = 8;
  cfg.n_layers = 3;
  cfg.split_size = 3;
  cfg.top_k = 2;
  Tensor ids = Tensor::from(std::vector<int32_t>{1, 5, 2, 7, 3, 9, 4, 11, 6, 0}, {1, 10});
  Tensor labels = Tensor::from(std::vector<int32_t>{5, 2, 7, 3, 9, 4, 11, 6, 0, -100}, {1, 10});
  std::map<bool, std::map<int64_t, Tensor>> seen;  // composed? -> layer -> gradient
  for (bool composed : {false, true}) {
    avey::Model model(cfg, Device::CPU, DType::F64);
    model.init(3);
    model.set_composed(composed);
    model.set_packing(false);
    std::vector<int64_t> order;
    model.set_block_hook([&](int64_t layer, const Tensor& g) {
      order.push_back(layer);
      seen[composed][layer] = g.clone();
    });
    model.loss(ids, labels).backward();
    CHECK(order == std::vector<int64_t>{2, 1, 0});  // backward meets the last block first
    // 4 splits (T = 10 padded to 12), C = 9 rows a context.
    CHECK(seen[composed][0].shape() == Shape{4 * 9, 8});
  }
  for (int64_t layer = 0; layer < 3; ++layer) {
    CAPTURE(layer);
    CHECK(testing::rel_diff(seen[false][layer], seen[true][layer]) < 1e-12);
  }
}

TEST_CASE("avey hooks: packed, a block's output gradient has one row per packed row") {
  avey::Config cfg;
  cfg.vocab_size = 13, cfg.d_embed = 8, cfg.n_layers = 2, cfg.split_size = 3, cfg.top_k = 2;
  Tensor ids = Tensor::from(std::vector<int32_t>{1, 5, 2, 7, 3, 9, 4, 11, 6, 0, 8, 2}, {1, 12});
  std::map<bool, Tensor> first;  // packing? -> block 0's output gradient
  for (bool packing : {true, false}) {
    avey::Model model(cfg, Device::CPU, DType::F64);
    model.init(3);
    model.set_packing(packing);
    model.set_block_hook([&](int64_t layer, const Tensor& g) {
      if (layer == 0) first[packing] = g.clone();
    });
    model.loss(ids, ids).backward();
  }
  // 4 splits, C = 9: splits 0 and 1 have 6 and 3 padding rows; packed, 6 shared rows + 3 + 6 + 9 + 9
  REQUIRE(first[true].shape() == Shape{33, 8});
  REQUIRE(first[false].shape() == Shape{36, 8});
  // a context's own rows have the same gradient either way (split 3's rows: the last 9 of both)
  CHECK(testing::rel_diff(first[true].view(24 * 8, {9, 8}), first[false].view(27 * 8, {9, 8})) < 1e-12);
  // a shared padding row's gradient is the sum over the contexts that hold it: padding row 1 is
  // row 1 of contexts 0 and 1 (unpacked rows 1 and 10), packed row 1
  Tensor sum = add(first[false].view(1 * 8, {1, 8}), first[false].view(10 * 8, {1, 8}));
  CHECK(testing::rel_diff(first[true].view(1 * 8, {1, 8}), sum) < 1e-12);
}
