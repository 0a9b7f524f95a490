#include "cli/finetuned.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "cli/json_fields.h"
#include "data/progress.h"
#include "engine/fused_ops.h"

void write_finetuned(const std::string& dir, const avey::Model& model, const FinetunedInfo& info) {
  nlohmann::ordered_json j = to_reference_config(ModelSpec{model.config(), info.tokenizer, true});
  nlohmann::ordered_json id2label, label2id;
  for (size_t i = 0; i < info.labels.size(); ++i) id2label[std::to_string(i)] = info.labels[i], label2id[info.labels[i]] = i;
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  if (model.config().head == "sequence") j["problem_type"] = "single_label_classification";
  j["avey_task"] = data::name_of(info.kind);
  write_reference_folder(dir, j, model);
}

FinetunedInfo read_finetuned(const ModelFolder& folder) {
  const std::string path = folder.dir + "/config.json";
  FinetunedInfo info{folder.spec.config, {}, data::TaskKind::Sequence, folder.spec.tokenizer};
  if (!info.config.has_head())
    throw std::runtime_error(path + ": no fine-tuning head (architectures AveyForSequenceClassification or "
                                    "AveyForTokenClassification; avey finetune writes them)");
  const nlohmann::json j = parse_json_object(read_text_file(path), path);
  if (!j.contains("id2label") || !j["id2label"].is_object())
    throw std::runtime_error(path + ": no id2label (the label names)");
  for (int64_t i = 0; i < info.config.num_labels; ++i) {
    const std::string key = std::to_string(i);
    if (!j["id2label"].contains(key))
      throw std::runtime_error(fmt::format("{}: id2label has no label {} (num_labels {})", path, i, info.config.num_labels));
    info.labels.push_back(json_string(j["id2label"][key], "id2label", path));
  }
  const std::string task = j.contains("avey_task") ? json_string(j["avey_task"], "avey_task", path)
                           : info.config.head == "sequence" ? "sequence" : "token (words)";
  bool known = false;
  for (data::TaskKind k : {data::TaskKind::Sequence, data::TaskKind::TokenWords, data::TaskKind::TokenSpans})
    if (task == data::name_of(k)) info.kind = k, known = true;
  if (!known) throw std::runtime_error(path + ": avey_task '" + task + "' is not sequence, token (words) or token (spans)");
  return info;
}

avey::Config pretrained_config(const ModelFolder& folder) {
  avey::Config c = folder.spec.config;
  if (!c.is_encoder()) throw std::runtime_error(folder.dir + " holds an Avey decoder; fine-tuning heads sit on Avey-B (model avey-b)");
  c.head.clear(), c.num_labels = 0;
  return c;
}

void load_encoder(const ModelFolder& folder, avey::Model& model) {
  // the folder's own model (its head, if any, included: every check of its loader), then its encoder's tensors
  const std::unique_ptr<avey::Model> pretrained = load_model(folder, engine::Device::CPU, model.master_dtype());
  std::map<std::string, engine::Tensor> state = model.state();
  for (const auto& [name, t] : pretrained->state())
    if (name.rfind("dense.", 0) != 0 && name.rfind("classifier.", 0) != 0) state.at(name) = t;
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

