// `avey grads`: the loss and every parameter's gradient norm for one batch (parity with the
// PyTorch reference: tests/reference/avey_ref.py grads takes the same files).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "avey/batch_file.h"
#include "avey/model.h"
#include "cli/args.h"
#include "cli/command.h"
#include "cli/grad_stats.h"
#include "cli/model_folder.h"
#include "engine/safetensors.h"

namespace {

using engine::Tensor;

int run_grads(int argc, char** argv) {
  Args args("grads", "Print the loss and every parameter's gradient norm for one batch.");
  args.option("checkpoint", "DIR", "run, checkpoint or reference folder (or --config with --weights)");
  args.option("config", "NAME|FILE", "preset or .json/.toml config");
  args.option("weights", "FILE", "safetensors state (reference names)");
  args.option("batch", "FILE", "JSON {\"input_ids\": [[...]], \"labels\": [[...]]} (-100 = ignore)");
  args.option("device", "cpu|cuda", "where to run", "cpu");
  args.option("dtype", "f32|f64", "computation dtype (f64: CPU only, for parity checks)", "f32");
  args.flag("json", "print {\"loss\": x, \"grad_norms\": {name: norm}, \"block_output_grad_norms\": [...]}");
  args.option("dump", "FILE", "also write every gradient to this safetensors file");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("batch")) throw UsageError("avey grads: --batch is required");
  const bool folder = args.given("checkpoint"), files = args.given("config") || args.given("weights");
  if (folder == files || (files && !(args.given("config") && args.given("weights"))))
    throw UsageError("avey grads: give the model as --checkpoint DIR, or as --config FILE with --weights FILE");
  const std::string dev = args.str("device"), dt = args.str("dtype");
  if (dev != "cpu" && dev != "cuda") throw UsageError("avey grads: --device must be cpu or cuda");
  if (dt != "f32" && dt != "f64") throw UsageError("avey grads: --dtype must be f32 or f64");
  engine::Device device = dev == "cpu" ? engine::Device::CPU : engine::Device::CUDA;
  engine::DType dtype = dt == "f32" ? engine::DType::F32 : engine::DType::F64;

  std::unique_ptr<avey::Model> loaded;
  if (folder) {
    loaded = load_model(open_model_folder(args.str("checkpoint")), device, dtype);
  } else {
    loaded = std::make_unique<avey::Model>(avey::load_config(args.str("config")), device, dtype);
    load_weights_into(*loaded, engine::load_safetensors(args.str("weights")), args.str("weights"));
  }
  avey::Model& model = *loaded;
  const avey::TokenBatch batch = avey::read_batch_json(args.str("batch"));
  const Tensor& ids = batch.input_ids;
  const Tensor& labels = batch.labels;

  auto norm = l2_norm;
  std::vector<double> block_norms(size_t(model.config().n_layers));
  model.set_block_hook([&](int64_t layer, const Tensor& g) { block_norms[size_t(layer)] = norm(g); });
  model.zero_grad();
  Tensor loss = model.loss(ids.to(device), labels.to(device));
  loss.backward();
  nlohmann::ordered_json norms = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, Tensor>> dump;
  for (const avey::Param& p : model.params()) {
    norms[p.name] = norm(p.value.grad());
    dump.push_back({p.name, p.value.grad()});
  }
  if (args.given("dump")) engine::save_safetensors(args.str("dump"), dump, {{"loss", fmt::format("{:.17g}", loss.item())}});
  if (args.on("json")) {
    nlohmann::ordered_json j;
    j["loss"] = loss.item();
    j["grad_norms"] = norms;
    j["block_output_grad_norms"] = block_norms;
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("loss {:.17g}\n", loss.item());
    for (auto it = norms.begin(); it != norms.end(); ++it)
      fmt::print("  {:48} {:.10e}\n", it.key(), it.value().get<double>());
    for (size_t i = 0; i < block_norms.size(); ++i)
      fmt::print("  {:48} {:.10e}\n", fmt::format("(output of block {})", i), block_norms[i]);
  }
  return 0;
}

const RegisterCommand reg{{"grads", "loss and per-parameter gradient norms for one batch", run_grads}};

}  // namespace
