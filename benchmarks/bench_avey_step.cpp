// One Avey training step's forward + backward on the CPU (f32): tokens per second, with the
// time split into forward (loss) and backward. Compare with docs/model.md section 3 (tiny, 16 cores:
// 1.7k tok/s for a whole train step in PyTorch).
//
//   ./build/benchmarks/bench_avey_step [config=tiny] [batch=2] [seq_len=512] [steps=3]
#include <fmt/format.h>

#include <chrono>
#include <string>

#include "avey/model.h"
#include "engine/random.h"

using namespace engine;

int main(int argc, char** argv) {
  std::string config = argc > 1 ? argv[1] : "tiny";
  int64_t B = argc > 2 ? std::stoll(argv[2]) : 2, T = argc > 3 ? std::stoll(argv[3]) : 512;
  int steps = argc > 4 ? std::stoi(argv[4]) : 3;
  avey::Config cfg = avey::load_config(config);
  avey::Model model(cfg);
  model.init(11);
  Rng rng(1);
  std::vector<int32_t> ids, labels;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(int32_t(rng.below(uint64_t(cfg.vocab_size))));
  for (int64_t i = 0; i < B * T; ++i) labels.push_back(int32_t(rng.below(uint64_t(cfg.vocab_size))));
  Tensor x = Tensor::from(ids, {B, T}), y = Tensor::from(labels, {B, T});
  using clock = std::chrono::steady_clock;
  for (int s = 0; s <= steps; ++s) {  // step 0 warms up
    auto t0 = clock::now();
    Tensor loss = model.loss(x, y);
    auto t1 = clock::now();
    loss.backward();
    auto t2 = clock::now();
    double f = std::chrono::duration<double>(t1 - t0).count(), b = std::chrono::duration<double>(t2 - t1).count();
    if (s > 0)
      fmt::print("step {}: loss {:.4f}  forward {:.3f} s  backward {:.3f} s  {:.0f} tok/s\n", s, loss.item(), f, b,
                 double(B * T) / (f + b));
  }
  return 0;
}
