#include "cli/checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/atomic_file.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;

static nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

void save_checkpoint(const std::string& dir, const avey::Model& model, const optim::AdamW& opt, const TrainState& st) {
  fs::create_directories(dir);
  engine::write_file_atomic(dir + "/config.json", model.config().to_json().dump(2) + "\n");
  std::vector<std::pair<std::string, engine::Tensor>> tensors;
  for (auto& [name, t] : model.state()) tensors.emplace_back(name, t);
  engine::save_safetensors(dir + "/model.safetensors", tensors,
                           {{"step", std::to_string(st.step)}, {"tokenizer", st.tokenizer}});
  opt.save_state(dir + "/optimizer.bin");
  nlohmann::json j = {{"step", st.step},
                      {"tokenizer", st.tokenizer},
                      {"rng", st.rng},
                      {"loader", {{"epoch", st.loader.epoch}, {"cursor", st.loader.cursor}}},
                      {"settings", st.settings}};
  engine::write_file_atomic(dir + "/train_state.json", j.dump(2) + "\n");
}

LoadedModel read_run_config(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error("no run folder at " + dir);
  LoadedModel out;
  out.config = avey::load_config(dir + "/config.json");
  if (fs::exists(dir + "/train_state.json")) {
    nlohmann::json j = read_json(dir + "/train_state.json");
    out.tokenizer = j.value("tokenizer", "p50k");
    out.step = j.value("step", int64_t(0));
  } else {
    out.tokenizer = "p50k";
  }
  return out;
}

void load_weights(const std::string& dir, avey::Model& model) {
  model.load_state(engine::load_safetensors(dir + "/model.safetensors"));
}

TrainState load_checkpoint(const std::string& dir, avey::Model& model, optim::AdamW& opt) {
  nlohmann::json j = read_json(dir + "/train_state.json");
  TrainState st;
  try {
    st.step = j.at("step").get<int64_t>();
    st.tokenizer = j.at("tokenizer").get<std::string>();
    st.rng = j.at("rng").get<std::string>();
    st.loader.epoch = j.at("loader").at("epoch").get<uint64_t>();
    st.loader.cursor = j.at("loader").at("cursor").get<uint64_t>();
    st.settings = j.value("settings", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(dir + "/train_state.json: missing or bad field (" + std::string(e.what()) + ")");
  }
  load_weights(dir, model);
  opt.load_state(dir + "/optimizer.bin");
  if (opt.step_count() != st.step)
    throw std::runtime_error(fmt::format("{}: optimizer.bin is at step {} but train_state.json at step {} "
                                         "(an interrupted save?)",
                                         dir, opt.step_count(), st.step));
  return st;
}
