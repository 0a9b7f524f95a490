// The whole model against the PyTorch implementation of docs/model.md section 1
// (tests/reference/avey_ref.py): for each stored case, the engine on the CPU in fp32, loaded
// with the case's weights and batch, must give the reference's loss (computed in fp64 by
// PyTorch on the GPU machine) to 1e-5 relative and every parameter's gradient to 1e-4
// (normwise). The cases cover T % S != 0, k larger than the number of earlier splits, both
// ranker_weight_norm values and the ablation switches. Avey-B's cases (avey_b_ref.py) check its
// MLM loss, and its head cases (avey_b_heads_ref.py) the fine-tuning heads' task losses.
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

// batch.json: input_ids [B][T]; labels [B], [B][labels] or [B][T]; label_dtype "int" or "float".
static std::pair<Tensor, Tensor> read_head_batch(const fs::path& path) {
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

static void check_case(const fs::path& dir, DType dtype, double loss_tol, double grad_tol, Worst& worst) {
  CAPTURE(dir.filename().string());
  avey::Model model(avey::load_config((dir / "config.json").string()), Device::CPU, dtype);
  model.load_state(load_safetensors((dir / "weights.safetensors").string()));
  auto expected = load_safetensors((dir / "grads.safetensors").string());
  std::ifstream in(dir / "expected.json");
  const double ref_loss = nlohmann::json::parse(in).at("loss").get<double>();

  model.zero_grad();
  Tensor loss;
  if (model.config().has_head()) {  // a head case: labels of the head's kind, its task loss
    auto [ids, labels] = read_head_batch(dir / "batch.json");
    loss = model.task_loss(ids, is_floating(labels.dtype()) ? labels.to(dtype) : labels);
  } else {
    avey::TokenBatch batch = avey::read_batch_json((dir / "batch.json").string());
    loss = model.loss(batch.input_ids, batch.labels);
  }
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

// Every stored case under tests/reference/<folder>, in fp32 (the tolerances) and fp64.
static int check_cases(const std::string& folder) {
  const fs::path root = fs::path(AVEY_SOURCE_DIR) / "tests/reference" / folder;
  int cases = 0;
  Worst f32, f64;
  if (!fs::is_directory(root)) return 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!fs::exists(entry.path() / "grads.safetensors")) continue;
    check_case(entry.path(), DType::F32, 1e-5, 1e-4, f32);  // the tolerances, CPU fp32
    check_case(entry.path(), DType::F64, 1e-12, 1e-9, f64);  // and the same math exactly, in fp64
    ++cases;
  }
  MESSAGE(cases << " reference cases in " << folder << "; worst relative error: fp32 loss " << f32.loss << ", grad "
                 << f32.grad << "; fp64 loss " << f64.loss << ", grad " << f64.grad);
  return cases;
}

TEST_CASE("parity: the engine's loss and gradients equal the PyTorch reference's on every stored case") {
  CHECK(check_cases("parity_cases") >= 10);
}

// Avey-B's cases (tests/reference/avey_b_ref.py: its MLM loss over the masked positions; the
// oracle itself matched the public reference's classes to 1e-10 on them, on the device).
TEST_CASE("parity: Avey-B's MLM loss and gradients equal the PyTorch reference's on every stored case") {
  CHECK(check_cases("parity_cases_b") >= 5);
}

// Avey-B's fine-tuning heads (tests/reference/avey_b_heads_ref.py: sequence head with cross-entropy,
// MSE and BCE, token head; the oracle itself checked against the public reference's
// AveyForSequenceClassification / AveyForTokenClassification on the device). The cases are
// generated there (scripts/heads-check); until they are stored this test says so.
TEST_CASE("parity: Avey-B's heads, loss and gradients equal the PyTorch reference's on every stored case") {
  const int cases = check_cases("head_cases");
  if (cases == 0)
    MESSAGE("no stored head cases yet in tests/reference/head_cases (scripts/heads-check generates them on the GPU machine)");
  else
    CHECK(cases >= 6);
}
