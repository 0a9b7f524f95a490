// Avey-B's heads against the PyTorch oracle (tests/reference/avey_b_heads_ref.py, which is itself
// checked against the public reference's AveyForSequenceClassification / TokenClassification):
// for each stored case in tests/reference/head_cases, the engine on the CPU in fp32 gives the
// oracle's fp64 loss to 1e-5 relative and every gradient to 1e-4 (normwise); in fp64 1e-12 / 1e-9.
// The cases are generated on the GPU machine (`avey_b_heads_ref.py generate`); until they are
// stored this test has nothing to compare and says so.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "avey/model.h"
#include "engine/safetensors.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using namespace engine;

namespace {

// batch.json: input_ids [B][T]; labels [B], [B][labels] or [B][T]; label_dtype "int" or "float".
std::pair<Tensor, Tensor> read_head_batch(const fs::path& path) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<int32_t> ids;
  for (const auto& row : j.at("input_ids"))
    for (const auto& v : row) ids.push_back(v.get<int32_t>());
  const int64_t B = int64_t(j.at("input_ids").size()), T = int64_t(ids.size()) / B;
  const nlohmann::json& lab = j.at("labels");
  Shape shape{B};
  if (lab.at(0).is_array()) shape.push_back(int64_t(lab.at(0).size()));
  const nlohmann::json flat = lab.at(0).is_array() ? [&] {
    nlohmann::json f = nlohmann::json::array();
    for (const auto& row : lab) f.insert(f.end(), row.begin(), row.end());
    return f;
  }() : lab;
  Tensor labels = j.at("label_dtype") == "int" ? Tensor::from(flat.get<std::vector<int32_t>>(), shape)
                                               : Tensor::from(flat.get<std::vector<double>>(), shape);
  return {Tensor::from(ids, {B, T}), labels};
}

}  // namespace

TEST_CASE("heads parity: the engine's task loss and gradients equal the PyTorch oracle's on every stored case") {
  const fs::path root = fs::path(AVEY_SOURCE_DIR) / "tests/reference/head_cases";
  int cases = 0;
  double worst_loss = 0, worst_grad = 0;
  if (fs::is_directory(root))
    for (const auto& entry : fs::directory_iterator(root)) {
      const fs::path dir = entry.path();
      if (!fs::exists(dir / "grads.safetensors")) continue;
      CAPTURE(dir.filename().string());
      std::ifstream in(dir / "expected.json");
      const double ref_loss = nlohmann::json::parse(in).at("loss").get<double>();
      const auto expected = load_safetensors((dir / "grads.safetensors").string());
      for (DType dt : {DType::F32, DType::F64}) {
        const double loss_tol = dt == DType::F32 ? 1e-5 : 1e-12, grad_tol = dt == DType::F32 ? 1e-4 : 1e-9;
        avey::Model model(avey::load_config((dir / "config.json").string()), Device::CPU, dt);
        model.load_state(load_safetensors((dir / "weights.safetensors").string()));
        auto [ids, labels] = read_head_batch(dir / "batch.json");
        if (is_floating(labels.dtype())) labels = labels.to(dt);
        model.zero_grad();
        Tensor loss = model.task_loss(ids, labels);
        loss.backward();
        const double loss_err = std::abs(loss.item() - ref_loss) / std::abs(ref_loss);
        CHECK(loss_err <= loss_tol);
        if (dt == DType::F32) worst_loss = std::max(worst_loss, loss_err);
        REQUIRE(expected.size() == model.params().size());
        for (const avey::Param& p : model.params()) {
          CAPTURE(p.name);
          REQUIRE(expected.count(p.name) == 1);
          const double err = testing::rel_diff(p.value.grad(), expected.at(p.name));
          CHECK(err < grad_tol);
          if (dt == DType::F32) worst_grad = std::max(worst_grad, err);
        }
      }
      ++cases;
    }
  if (cases == 0)
    MESSAGE("no stored head cases yet in tests/reference/head_cases (generated on the GPU machine: "
            "python3 tests/reference/avey_b_heads_ref.py generate --out tests/reference/head_cases)");
  else
    MESSAGE(cases << " head cases; worst fp32 relative error: loss " << worst_loss << ", gradient " << worst_grad);
}
