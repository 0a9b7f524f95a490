// Avey-B's fine-tuning heads on the GPU (avey/heads.h): the task loss and every parameter's
// gradient on the GPU in f32 equal the CPU's (loss 1e-5, gradients 1e-4), for each head and loss
// (sequence: cross-entropy, MSE, BCE; token: cross-entropy), and bf16 mixed precision stays within
// bf16's reach of them (loss 1e-2, the whole gradient 3e-2). Skipped without a GPU.
#include "tests/testing.h"

#ifndef AVEY_HAVE_CUDA

TEST_CASE("cuda heads: GPU head tests (no CUDA build)") { MESSAGE("no CUDA build: the GPU head tests were not compiled"); }

#else

#include "avey/model.h"
#include "tests/cuda_testing.h"

using namespace engine;
using testing::rel_diff;
using testing::kNoGpu;

namespace {

struct Run {
  double loss;
  Tensor grads;  // f64 on the CPU
};

Run run(const avey::Config& c, Device device, DType dtype, const Tensor& ids, const Tensor& labels) {
  avey::Model model(c, device, dtype);
  model.init(3);
  model.zero_grad();
  Tensor loss = model.task_loss(ids, labels);
  loss.backward();
  return {loss.item(), model.flat_grads().to(Device::CPU).to(DType::F64)};
}

}  // namespace

TEST_CASE("cuda heads: the task losses and gradients on the GPU equal the CPU's" * doctest::skip(kNoGpu)) {
  avey::Config c = avey::Config::preset("avey-b-tiny");
  c.vocab_size = 64, c.mask_id = 63, c.d_embed = 32, c.n_layers = 3, c.split_size = 8, c.top_k = 2;
  Rng rng(5);
  std::vector<int32_t> id_values;
  for (int i = 0; i < 3 * 29; ++i) id_values.push_back(int32_t(rng.below(63)));
  const Tensor ids = Tensor::from(id_values, {3, 29});  // T 29, S 8: padding in the last split
  std::vector<int32_t> tok;
  for (int i = 0; i < 3 * 29; ++i) tok.push_back(i % 7 == 0 ? -100 : int32_t(rng.below(4)));
  struct Head {
    const char* name;
    std::string head;
    int64_t labels;
    Tensor targets;
  };
  const std::vector<Head> heads = {
      {"sequence, cross-entropy", "sequence", 3, Tensor::from(std::vector<int32_t>{2, 0, 1}, {3})},
      {"sequence, MSE", "sequence", 1, Tensor::from(std::vector<float>{0.5f, -1.0f, 2.0f}, {3})},
      {"sequence, BCE", "sequence", 2, Tensor::from(std::vector<float>{1, 0, 0, 1, 1, 1}, {3, 2})},
      {"token, cross-entropy", "token", 4, Tensor::from(tok, {3, 29})}};
  for (const Head& h : heads) {
    CAPTURE(h.name);
    c.head = h.head, c.num_labels = h.labels;
    const Run cpu = run(c, Device::CPU, DType::F32, ids, h.targets);
    const Run gpu = run(c, Device::CUDA, DType::F32, ids, h.targets);
    CHECK(std::abs(gpu.loss - cpu.loss) <= 1e-5 * std::abs(cpu.loss));
    CHECK(rel_diff(gpu.grads, cpu.grads) < 1e-4);
    const Run bf16 = run(c, Device::CUDA, DType::BF16, ids, h.targets);
    CHECK(std::abs(bf16.loss - cpu.loss) <= 1e-2 * std::abs(cpu.loss));
    CHECK(rel_diff(bf16.grads, cpu.grads) < 3e-2);
  }
}

#endif
