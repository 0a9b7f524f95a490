#include "cli/checkpoint.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "cli/json_fields.h"
#include "cli/model_config.h"
#include "engine/atomic_file.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;

namespace {

// Throws when a weight holds NaN or infinity: a diverged run keeps its last good checkpoint.
void check_finite(const std::string& name, const engine::Tensor& host, int64_t step) {
  auto first_bad = [&](const auto* p) {
    for (int64_t i = 0; i < host.numel(); ++i)
      if (!std::isfinite(p[i])) return i;
    return int64_t(-1);
  };
  const int64_t i = host.dtype() == engine::DType::F64 ? first_bad(host.data<double>()) : first_bad(host.data<float>());
  if (i >= 0)
    throw std::runtime_error(fmt::format("refusing to save step {}: weight '{}' holds a non-finite value at element {} "
                                         "(the run diverged; the last checkpoint is kept)",
                                         step, name, i));
}

nlohmann::json to_json(const TrainState& st) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, d] : st.files) files[name] = {{"bytes", d.bytes}, {"checksum", engine::to_hex(d.checksum)}};
  nlohmann::json j = {{"step", st.step},
                      {"tokenizer", st.tokenizer},
                      {"rng", st.rng},
                      {"loader", {{"epoch", st.loader.epoch}, {"cursor", st.loader.cursor}}},
                      {"files", files}};
  if (st.best) j["best"] = {{"step", st.best->step}, {"val_loss", st.best->val_loss}};
  return j;
}

}  // namespace

std::string step_folder_name(int64_t step) { return fmt::format("step-{:08}", step); }

std::optional<int64_t> step_of_folder(const std::string& name) {
  int64_t step = -1;
  if (name.rfind("step-", 0) != 0) return std::nullopt;
  auto [end, ec] = std::from_chars(name.data() + 5, name.data() + name.size(), step);
  if (ec != std::errc() || end != name.data() + name.size() || step < 0 || step_folder_name(step) != name)
    return std::nullopt;
  return step;
}

std::string save_checkpoint(const std::string& run_dir, const avey::Model& model, const optim::AdamW& opt,
                            TrainState st) {
  std::vector<std::pair<std::string, engine::Tensor>> weights;
  for (const avey::Param& p : model.params()) {
    engine::Tensor host = p.value.detach().to(engine::Device::CPU);
    check_finite(p.name, host, st.step);
    weights.emplace_back(p.name, host);
  }
  const std::string name = step_folder_name(st.step), dir = run_dir + "/" + name;
  const std::string tmp = run_dir + "/." + name + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    st.files["config.json"] = engine::write_file_atomic(tmp + "/config.json", model.config().to_json().dump(2) + "\n");
    st.files["model.safetensors"] = engine::save_safetensors(
        tmp + "/model.safetensors", weights,
        {{"format", "pt"}, {"step", std::to_string(st.step)}, {"tokenizer", st.tokenizer}});
    st.files["optimizer.bin"] = opt.save_state(tmp + "/optimizer.bin");
    engine::write_file_atomic(tmp + "/train_state.json", to_json(st).dump(2) + "\n");
    fs::remove_all(dir);  // left by a save of this step that was interrupted before any pointer named it
    engine::commit_folder(tmp, dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  return name;
}

TrainState parse_train_state(const std::string& text, const std::string& what) {
  const nlohmann::json j = parse_json_object(text, what);
  TrainState st;
  st.step = json_int(json_field(j, "step", what), "step", what);
  st.tokenizer = json_string(json_field(j, "tokenizer", what), "tokenizer", what);
  st.rng = json_string(json_field(j, "rng", what), "rng", what);
  const nlohmann::json& loader = json_field(j, "loader", what);
  st.loader.epoch = json_uint(json_field(loader, "epoch", what), "loader.epoch", what);
  st.loader.cursor = json_uint(json_field(loader, "cursor", what), "loader.cursor", what);
  if (j.contains("best")) {
    const nlohmann::json& best = j["best"];
    st.best = TrainState::Best{json_int(json_field(best, "step", what), "best.step", what),
                               json_real(json_field(best, "val_loss", what), "best.val_loss", what)};
  }
  // An older avey wrote no "files" (its run folder held one checkpoint, at the top).
  const nlohmann::json files = j.contains("files") ? j["files"] : nlohmann::json::object();
  if (!files.is_object()) throw std::runtime_error(what + ": key 'files': expected an object");
  for (auto it = files.begin(); it != files.end(); ++it) {
    const std::string key = "files." + it.key();
    if (it.key().empty() || it.key().find('/') != std::string::npos || it.key() == "..")
      throw std::runtime_error(what + ": key '" + key + "': not a file name");
    engine::FileDigest d;
    d.bytes = json_uint(json_field(it.value(), "bytes", what), key + ".bytes", what);
    if (!engine::from_hex(json_string(json_field(it.value(), "checksum", what), key + ".checksum", what), d.checksum))
      throw std::runtime_error(what + ": key '" + key + ".checksum': expected 16 hex digits");
    st.files[it.key()] = d;
  }
  return st;
}

TrainState read_train_state(const std::string& step_dir) {
  const std::string path = step_dir + "/train_state.json";
  return parse_train_state(read_text_file(path), path);
}

void verify_files(const std::string& step_dir, const TrainState& st, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const std::string path = step_dir + "/" + name;
    auto it = st.files.find(name);
    if (it == st.files.end())
      throw std::runtime_error(step_dir + "/train_state.json: records no size and checksum of " + name);
    const engine::FileDigest got = engine::digest_file(path);
    if (!(got == it->second))
      throw std::runtime_error(fmt::format("{}: {} bytes with checksum {}, but train_state.json recorded {} bytes with "
                                           "checksum {}: the checkpoint is damaged",
                                           path, got.bytes, engine::to_hex(got.checksum), it->second.bytes,
                                           engine::to_hex(it->second.checksum)));
  }
}

void load_checkpoint_weights(const std::string& step_dir, const TrainState& st, avey::Model& model) {
  if (!st.files.empty()) verify_files(step_dir, st, {"config.json", "model.safetensors"});  // (none: an older avey's)
  if (auto named = step_of_folder(fs::path(step_dir).filename().string()); named && *named != st.step)
    throw std::runtime_error(fmt::format("{}: the folder is named for step {} but train_state.json says step {}", step_dir,
                                         *named, st.step));
  const std::string path = step_dir + "/model.safetensors";
  std::map<std::string, std::string> meta;
  auto tensors = engine::load_safetensors(path, &meta);
  if (meta["step"] != std::to_string(st.step))
    throw std::runtime_error(fmt::format("{}: holds the weights of step '{}', train_state.json says step {}", path,
                                         meta["step"], st.step));
  load_weights_into(model, tensors, path);
}

TrainState load_checkpoint(const std::string& step_dir, avey::Model& model, optim::AdamW& opt) {
  const TrainState st = read_train_state(step_dir);
  verify_files(step_dir, st, {"config.json", "optimizer.bin"});
  const avey::Config saved = read_model_config(step_dir + "/config.json").config;
  if (saved.to_json() != model.config().to_json())
    throw std::runtime_error(step_dir + "/config.json: not the run's model config");
  load_checkpoint_weights(step_dir, st, model);
  opt.load_state(step_dir + "/optimizer.bin");
  if (opt.step_count() != st.step)
    throw std::runtime_error(fmt::format("{}: optimizer.bin is at step {} but train_state.json at step {}", step_dir,
                                         opt.step_count(), st.step));
  return st;
}

void load_weights_into(avey::Model& model, const std::map<std::string, engine::Tensor>& tensors,
                       const std::string& what) {
  try {
    model.load_state(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
}
