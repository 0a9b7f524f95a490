// The whole model on the GPU: loss and every parameter gradient against the CPU and against the
// PyTorch reference, on every parity case (tests/reference/parity_cases/*), and determinism of
// a short mixed-precision training run.
//
//   GPU f32 vs CPU f32 (cuBLAS in true fp32, no TF32): loss within 1e-5, each gradient 1e-4.
//   GPU bf16 (fp32 master weights, bf16 working weights and activations) vs the f64 reference:
//     loss within 1e-2; the whole gradient (all parameters as one vector) within 2e-2; each
//     tensor's largest error is reported.
//   Two bf16 training runs with one seed give bit-identical losses.
//
// Skipped without a GPU; without a CUDA build there is one test that says so.
#include "tests/testing.h"

#ifndef AVEY_HAVE_CUDA

TEST_CASE("cuda model: GPU model tests (no CUDA build)") { MESSAGE("no CUDA build: the GPU model tests were not compiled"); }

#else

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "avey/model.h"
#include "engine/safetensors.h"
#include "kernels/cuda/kernels.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "tests/cuda_testing.h"

using namespace engine;
using testing::rel_diff;
using testing::kNoGpu;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string name;
  avey::Config cfg;
  std::map<std::string, Tensor> weights, ref_grads;
  Tensor ids, labels;
  double ref_loss = 0;
};

Tensor ids_of(const nlohmann::json& rows) {
  std::vector<int32_t> v;
  for (const auto& r : rows)
    for (const auto& x : r) v.push_back(x.get<int32_t>());
  return Tensor::from(v, {int64_t(rows.size()), int64_t(rows[0].size())});
}

// The decoder's stored cases and Avey-B's (tests/reference/parity_cases, parity_cases_b).
std::vector<Case> parity_cases() {
  std::vector<Case> out;
  std::vector<fs::path> dirs;
  for (const char* folder : {"parity_cases", "parity_cases_b"})
    for (const auto& e : fs::directory_iterator(fs::path(AVEY_SOURCE_DIR) / "tests/reference" / folder))
      if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& d : dirs) {
    Case c;
    c.name = d.filename().string();
    c.cfg = avey::load_config((d / "config.json").string());
    c.weights = load_safetensors((d / "weights.safetensors").string());
    c.ref_grads = load_safetensors((d / "grads.safetensors").string());
    nlohmann::json batch = nlohmann::json::parse(std::ifstream(d / "batch.json"));
    c.ids = ids_of(batch.at("input_ids"));
    c.labels = ids_of(batch.at("labels"));
    c.ref_loss = nlohmann::json::parse(std::ifstream(d / "expected.json")).at("loss").get<double>();
    out.push_back(std::move(c));
  }
  return out;
}

struct Result {
  double loss;
  std::map<std::string, Tensor> grads;  // CPU f64 copies
  Tensor flat;                          // all gradients, concatenated, CPU f64
};

Result run(const Case& c, Device device, DType dtype) {
  avey::Model model(c.cfg, device, dtype);
  model.load_state(c.weights);
  model.zero_grad();
  Tensor loss = model.loss(c.ids.to(device), c.labels.to(device));
  loss.backward();
  Result r;
  r.loss = loss.item();
  std::vector<double> all;  // every gradient in parameter order (the flat buffer without its gaps)
  for (const avey::Param& p : model.params()) {
    r.grads[p.name] = p.value.grad().to(Device::CPU).to(DType::F64);
    const std::vector<double> v = r.grads[p.name].to_vector<double>();
    all.insert(all.end(), v.begin(), v.end());
  }
  r.flat = Tensor::from(all, {int64_t(all.size())});
  return r;
}

}  // namespace

TEST_CASE("cuda model: GPU f32 loss and gradients equal the CPU's on every parity case") {
  if (kNoGpu) {
    MESSAGE("no GPU: skipped");
    return;
  }
  double worst = 0;
  for (const Case& c : parity_cases()) {
    CAPTURE(c.name);
    Result cpu = run(c, Device::CPU, DType::F32), gpu = run(c, Device::CUDA, DType::F32);
    CHECK(std::abs(gpu.loss - cpu.loss) <= 1e-5 * std::abs(cpu.loss));
    for (const auto& [name, g] : cpu.grads) {
      CAPTURE(name);
      const double e = rel_diff(gpu.grads.at(name), g);
      worst = std::max(worst, e);
      CHECK(e < 1e-4);
    }
  }
  MESSAGE(fmt::format("largest per-tensor gradient error, GPU f32 vs CPU f32: {:.2e}", worst));
}

TEST_CASE("cuda model: GPU bf16 mixed precision is within bf16 tolerance of the f64 reference") {
  if (kNoGpu) {
    MESSAGE("no GPU: skipped");
    return;
  }
  double worst_flat = 0, worst_tensor = 0, worst_loss = 0;
  std::string worst_name;
  for (const Case& c : parity_cases()) {
    CAPTURE(c.name);
    Result gpu = run(c, Device::CUDA, DType::BF16);
    const double le = std::abs(gpu.loss - c.ref_loss) / std::abs(c.ref_loss);
    worst_loss = std::max(worst_loss, le);
    CHECK(le < 1e-2);
    // The reference's gradients laid out like the flat buffer (the model's parameter order).
    std::vector<double> ref;
    avey::Model layout(c.cfg, Device::CPU, DType::F32);
    for (const avey::Param& p : layout.params()) {
      REQUIRE(c.ref_grads.count(p.name));
      auto v = c.ref_grads.at(p.name).to(DType::F64).to_vector<double>();
      ref.insert(ref.end(), v.begin(), v.end());
      const double e = rel_diff(gpu.grads.at(p.name), c.ref_grads.at(p.name).to(DType::F64));
      if (e > worst_tensor) worst_tensor = e, worst_name = c.name + " " + p.name;
    }
    const double fe = rel_diff(gpu.flat, Tensor::from(ref, {int64_t(ref.size())}));
    worst_flat = std::max(worst_flat, fe);
    CHECK(fe < 2e-2);
  }
  MESSAGE(fmt::format("GPU bf16 vs f64 reference: loss {:.2e}, whole gradient {:.2e}, worst tensor {:.2e} ({})",
                      worst_loss, worst_flat, worst_tensor, worst_name));
}

TEST_CASE("cuda model: two bf16 training runs with one seed give bit-identical losses") {
  if (kNoGpu) {
    MESSAGE("no GPU: skipped");
    return;
  }
  avey::Config cfg;
  cfg.vocab_size = 512, cfg.d_embed = 64, cfg.n_layers = 2, cfg.split_size = 16, cfg.top_k = 3;
  auto train = [&cfg]() {
    avey::Model model(cfg, Device::CUDA, DType::BF16);
    model.init(11);
    std::vector<optim::Segment> segs;
    for (const avey::Param& p : model.params())
      segs.push_back({p.name, p.value.impl()->offset, p.value.numel(), p.value.ndim() >= 2});
    optim::AdamW opt(model.flat_params(), segs, {0.9, 0.95, 1e-12, 0.1});
    Rng rng(5);
    std::vector<double> losses;
    for (int step = 0; step < 6; ++step) {
      std::vector<int32_t> ids, labels;
      for (int i = 0; i < 4 * 100; ++i) ids.push_back(int32_t(rng.below(64)));
      labels = ids;  // learnable in a few steps (each position sees its own token)
      model.zero_grad();
      Tensor loss = model.loss(Tensor::from(ids, {4, 100}, Device::CUDA), Tensor::from(labels, {4, 100}, Device::CUDA));
      loss.backward();
      losses.push_back(loss.item());
      optim::ClipResult clip = optim::clip_grad_norm(model.flat_grads(), 1.0);
      opt.step(model.flat_grads(), 1e-3, clip, model.working_params());
    }
    return losses;
  };
  std::vector<double> a = train(), b = train();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  CHECK(a.back() < a.front());  // it learns
  MESSAGE(fmt::format("bf16 training losses: {:.6f} -> {:.6f}", a.front(), a.back()));
}

#endif
