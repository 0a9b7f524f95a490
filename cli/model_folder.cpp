#include "cli/model_folder.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "cli/run_folder.h"
#include "engine/atomic_file.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;

ModelFolder open_model_folder(const std::string& path) {
  if (!fs::is_directory(path)) throw std::runtime_error("no model folder at " + path);
  ModelFolder f;
  f.dir = path;
  if (fs::exists(path + "/latest") || fs::exists(path + "/run.json")) {
    std::optional<std::string> latest = latest_checkpoint(path);
    if (!latest) throw std::runtime_error(path + ": the run holds no checkpoint yet");
    f.dir = *latest;
  }
  f.spec = read_model_config(f.dir + "/config.json");
  if (fs::exists(f.dir + "/train_state.json")) {
    f.state = read_train_state(f.dir);
    f.step = f.state->step;
    f.spec.tokenizer = f.state->tokenizer;
  }
  if (f.spec.tokenizer.empty()) f.spec.tokenizer = "p50k";
  return f;
}

void load_weights(const ModelFolder& f, avey::Model& model) {
  if (f.state) return load_checkpoint_weights(f.dir, *f.state, model);
  const std::string single = f.dir + "/model.safetensors", index = f.dir + "/model.safetensors.index.json";
  if (fs::exists(single)) return load_weights_into(model, engine::load_safetensors(single), single);
  if (fs::exists(index)) return load_weights_into(model, engine::load_safetensors_index(index), index);
  throw std::runtime_error(f.dir + ": holds neither model.safetensors nor model.safetensors.index.json" +
                           (fs::exists(f.dir + "/pytorch_model.bin")
                                ? " (pytorch_model.bin, PyTorch's pickle format, is not read: save_pretrained "
                                  "writes safetensors unless safe_serialization=False)"
                                : ""));
}

void write_reference_folder(const std::string& out, const nlohmann::ordered_json& config, const avey::Model& model) {
  std::vector<std::pair<std::string, engine::Tensor>> weights;
  for (const avey::Param& p : model.params())
    weights.emplace_back(p.name, p.value.detach().to(engine::Device::CPU).to(engine::DType::F32));
  const std::string tmp = out + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    engine::write_file_atomic(tmp + "/config.json", config.dump(2) + "\n");
    engine::save_safetensors(tmp + "/model.safetensors", weights, {{"format", "pt"}});
    fs::remove_all(out);  // the folder this one replaces (none, an empty one, or an older copy)
    engine::commit_folder(tmp, out);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
}

std::unique_ptr<avey::Model> load_model(const ModelFolder& folder, engine::Device device, engine::DType dtype) {
  auto model = std::make_unique<avey::Model>(folder.spec.config, device, dtype);
  load_weights(folder, *model);
  return model;
}
