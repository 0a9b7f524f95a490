// The whole model against the PyTorch implementation of docs/model.md section 1
// (tests/reference/avey_ref.py): for each stored case, the engine on the CPU in fp32, loaded
// with the case's weights and batch, must give the reference's loss (computed in fp64 by
// PyTorch on the GPU machine) to 1e-5 relative and every parameter's gradient to 1e-4
// (normwise). The cases cover T % S != 0, k larger than the number of earlier splits, both
// ranker_weight_norm values and the ablation switches.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "avey/batch_file.h"
#include "avey/model.h"
#include "engine/safetensors.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using namespace engine;

struct Worst {
  double loss = 0, grad = 0;
};

static void check_case(const fs::path& dir, DType dtype, double loss_tol, double grad_tol, Worst& worst) {
  CAPTURE(dir.filename().string());
  avey::Model model(avey::load_config((dir / "config.json").string()), Device::CPU, dtype);
  model.load_state(load_safetensors((dir / "weights.safetensors").string()));
  avey::TokenBatch batch = avey::read_batch_json((dir / "batch.json").string());
  auto expected = load_safetensors((dir / "grads.safetensors").string());
  std::ifstream in(dir / "expected.json");
  const double ref_loss = nlohmann::json::parse(in).at("loss").get<double>();

  model.zero_grad();
  Tensor loss = model.loss(batch.input_ids, batch.labels);
  loss.backward();
  const double loss_err = std::abs(loss.item() - ref_loss) / std::abs(ref_loss);
  worst.loss = std::max(worst.loss, loss_err);
  CHECK(loss_err <= loss_tol);
  REQUIRE(expected.size() == model.params().size());
  for (const avey::Param& p : model.params()) {
    CAPTURE(p.name);
    REQUIRE(expected.count(p.name) == 1);
    const double err = testing::rel_diff(p.value.grad(), expected.at(p.name));
    worst.grad = std::max(worst.grad, err);
    CHECK(err < grad_tol);
  }
}

TEST_CASE("parity: the engine's loss and gradients equal the PyTorch reference's on every stored case") {
  const fs::path root = fs::path(AVEY_SOURCE_DIR) / "tests/reference/parity_cases";
  int cases = 0;
  Worst f32, f64;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "grads.safetensors")) continue;
    check_case(entry.path(), DType::F32, 1e-5, 1e-4, f32);  // the tolerances, CPU fp32
    check_case(entry.path(), DType::F64, 1e-12, 1e-9, f64);  // and the same math exactly, in fp64
    ++cases;
  }
  CHECK(cases >= 10);
  MESSAGE(cases << " reference cases; worst relative error: fp32 loss " << f32.loss << ", grad " << f32.grad
                 << "; fp64 loss " << f64.loss << ", grad " << f64.grad);
}
