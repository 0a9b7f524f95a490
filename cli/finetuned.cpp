#include "cli/finetuned.h"

#include <fmt/format.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>

#include "cli/checkpoint.h"
#include "data/progress.h"
#include "engine/fused_ops.h"
#include "engine/atomic_file.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;

namespace {

const char* architecture(const std::string& head) {
  return head == "sequence" ? "AveyForSequenceClassification" : "AveyForTokenClassification";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::runtime_error(path + ": not a JSON object");
  return j;
}

bool is_head_tensor(const std::string& name) { return name.rfind("dense.", 0) == 0 || name.rfind("classifier.", 0) == 0; }

}  // namespace

void write_finetuned(const std::string& dir, const avey::Model& model, const FinetunedInfo& info) {
  const avey::Config& c = model.config();
  nlohmann::ordered_json j;
  j["architectures"] = {architecture(c.head)};
  j["model_type"] = "avey-b";
  j["vocab_size"] = c.vocab_size;
  j["d_embed"] = c.d_embed;
  j["n_layers"] = c.n_layers;
  j["chunk_size"] = c.split_size;
  j["k"] = c.top_k;
  j["eps"] = c.eps;
  j["context_len"] = info.max_len;
  j["max_position_embeddings"] = info.max_len;
  j["hidden_size"] = c.d_embed;
  j["num_labels"] = c.num_labels;
  nlohmann::ordered_json id2label, label2id;
  for (size_t i = 0; i < info.labels.size(); ++i) id2label[std::to_string(i)] = info.labels[i], label2id[info.labels[i]] = i;
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  if (c.head == "sequence") j["problem_type"] = "single_label_classification";
  j["mask_token_id"] = c.mask_id;
  j["torch_dtype"] = "float32";
  j["avey_task"] = data::name_of(info.kind);
  j["avey_tokenizer"] = info.tokenizer;
  j["avey_max_len"] = info.max_len;
  fs::create_directories(dir);
  std::vector<std::pair<std::string, engine::Tensor>> tensors;
  for (const avey::Param& p : model.params()) tensors.emplace_back(p.name, p.value.to(engine::Device::CPU).to(engine::DType::F32));
  engine::save_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  engine::write_file_atomic(dir + "/config.json", j.dump(2) + "\n");
}

FinetunedInfo read_finetuned(const std::string& dir) {
  const std::string path = dir + "/config.json";
  const nlohmann::json j = read_json(path);
  auto bad = [&](const std::string& why) { return std::runtime_error(path + ": " + why); };
  if (j.value("model_type", "") != "avey-b" || !j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty())
    throw bad("not a fine-tuned Avey-B folder (needs model_type \"avey-b\" and architectures; avey finetune writes them)");
  const std::string arch = j["architectures"][0].get<std::string>();
  if (arch != architecture("sequence") && arch != architecture("token"))
    throw bad("architectures names " + arch + ", not AveyForSequenceClassification or AveyForTokenClassification");
  FinetunedInfo info;
  try {
    nlohmann::json c{{"model", "avey-b"}, {"head", arch == architecture("sequence") ? "sequence" : "token"}};
    // the reference's keys, with its AveyConfig defaults when absent
    c["vocab_size"] = j.value("vocab_size", 50304), c["d_embed"] = j.value("d_embed", 768);
    c["n_layers"] = j.value("n_layers", 26), c["chunk_size"] = j.value("chunk_size", 128), c["k"] = j.value("k", 3);
    c["eps"] = j.value("eps", 1e-12);
    if (j.contains("mask_token_id")) c["mask_id"] = j["mask_token_id"];
    const nlohmann::json& id2label = j.at("id2label");
    c["num_labels"] = j.value("num_labels", int64_t(id2label.size()));
    info.max_len = j.value("avey_max_len", j.value("max_position_embeddings", int64_t(512)));
    c["seq_len"] = info.max_len;
    info.config = avey::Config::from_json(c, path);
    for (size_t i = 0; i < id2label.size(); ++i) info.labels.push_back(id2label.at(std::to_string(i)).get<std::string>());
    info.tokenizer = j.value("avey_tokenizer", "p50k");
    const std::string task = j.value("avey_task", info.config.head == "sequence" ? "sequence" : "token (words)");
    for (data::TaskKind k : {data::TaskKind::Sequence, data::TaskKind::TokenWords, data::TaskKind::TokenSpans})
      if (task == data::name_of(k)) info.kind = k;
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("a missing or mistyped key (") + e.what() + ")");
  }
  if (int64_t(info.labels.size()) != info.config.num_labels)
    throw bad(fmt::format("num_labels {} but id2label has {} labels", info.config.num_labels, info.labels.size()));
  return info;
}

avey::Config pretrained_config(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error("no model folder at " + dir);
  const nlohmann::json j = read_json(dir + "/config.json");
  avey::Config c = j.contains("model_type") ? read_finetuned(dir).config : read_run_config(dir).config;
  if (!c.is_encoder()) throw std::runtime_error(dir + " holds an Avey decoder; fine-tuning heads sit on Avey-B (model avey-b)");
  c.head.clear(), c.num_labels = 0;
  return c;
}

void load_encoder(const std::string& dir, avey::Model& model) {
  std::map<std::string, engine::Tensor> state = model.state(), pretrained = engine::load_safetensors(dir + "/model.safetensors");
  for (auto& [name, t] : pretrained) {
    if (is_head_tensor(name)) continue;  // a fine-tuned folder's head: replaced by the new one
    if (!state.count(name)) throw std::runtime_error(dir + "/model.safetensors: unexpected tensor '" + name + "'");
    state[name] = t;
  }
  for (const auto& [name, t] : state)
    if (!is_head_tensor(name) && !pretrained.count(name))
      throw std::runtime_error(dir + "/model.safetensors: missing tensor '" + name + "'");
  model.load_state(state);
}

// Predictions for every example (class ids; one per token for token tasks): examples of one length
// batched together, so no example sees padding.
std::vector<std::vector<int32_t>> predict_examples(avey::Model& model, const std::vector<data::EncodedExample>& ex,
                                                   int64_t batch, const std::string& progress_label) {
  std::vector<size_t> order(ex.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ex[a].ids.size() < ex[b].ids.size(); });
  std::vector<std::vector<int32_t>> out(ex.size());
  data::Progress progress(progress_label);
  for (size_t at = 0; at < order.size();) {
    std::vector<size_t> idx{order[at]};
    while (at + idx.size() < order.size() && int64_t(idx.size()) < batch &&
           ex[order[at + idx.size()]].ids.size() == ex[idx[0]].ids.size())
      idx.push_back(order[at + idx.size()]);
    at += idx.size();
    const int64_t n = int64_t(idx.size()), T = int64_t(ex[idx[0]].ids.size());
    std::vector<int32_t> ids;
    for (size_t i : idx) ids.insert(ids.end(), ex[i].ids.begin(), ex[i].ids.end());
    const engine::Tensor logits = model.task_logits(engine::Tensor::from(ids, {n, T}));
    const std::vector<int32_t> best =
        engine::row_argmax(engine::reshape(logits, {logits.numel() / logits.size(-1), logits.size(-1)}))
            .to(engine::Device::CPU)
            .to_vector<int32_t>();
    const size_t per = best.size() / idx.size();
    for (size_t k = 0; k < idx.size(); ++k) out[idx[k]].assign(best.begin() + long(k * per), best.begin() + long((k + 1) * per));
    progress.update(double(at) / double(order.size()), fmt::format("{}/{} examples", at, order.size()));
  }
  progress.finish(fmt::format("{} examples", ex.size()));
  return out;
}

