// Reading gradients layer by layer: Model::set_block_hook hands over dL/d(block output) for every
// block during backward, the same with the fused layers and with their op-by-op twins.
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
