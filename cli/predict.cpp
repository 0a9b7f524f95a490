// `avey predict --model DIR`: label new text with a fine-tuned Avey-B (avey finetune's folder, or
// any folder in the reference's layout with a sequence or token classification head).
//
//   --text "..."        one text (token tasks on words: its words as the entities task splits
//                       them, data::split_words: punctuation apart)
//   --input FILE.jsonl  one example a line in the task's form (data/task_file.h); labels, if
//                       present, are ignored
// Prints one JSON line per example: {"text", "label", "probabilities"} (sequence), {"tokens",
// "labels"} (words), {"text", "spans": [{"start", "end", "label", "text"}]} (spans: runs of
// tokens predicted with one label, in characters). Each example runs on its own (no padding).
// --logits-out FILE writes every example's ids and logits for
// tests/reference/avey_b_heads_ref.py check-folder.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/finetuned.h"
#include "cli/run_data.h"
#include "data/finetune_tasks.h"
#include "data/progress.h"
#include "data/task_metrics.h"
#include "engine/atomic_file.h"

namespace {

// The examples to label, in the task's form, each given the first label (encode_task needs one).
data::RawTask read_inputs(const Args& args, const FinetunedInfo& info) {
  data::RawTask task;
  task.kind = info.kind;
  auto add = [&](const nlohmann::json& j, const std::string& where) {
    data::RawExample ex;
    if (info.kind == data::TaskKind::TokenWords) {
      if (j.contains("tokens") && j["tokens"].is_array()) {
        for (const auto& w : j["tokens"]) ex.words.push_back(w.get<std::string>());
      } else if (j.contains("text") && j["text"].is_string()) {
        ex.words = data::split_words(j["text"].get<std::string>());
      }
      if (ex.words.empty()) throw UsageError(where + ": needs \"tokens\" (a list of words) or a non-empty \"text\"");
      ex.word_labels.assign(ex.words.size(), info.labels[0]);
    } else {
      if (!j.contains("text") || !j["text"].is_string()) throw UsageError(where + ": needs a \"text\" string");
      ex.text = j["text"].get<std::string>();
      ex.label = info.labels[0];
    }
    task.examples.push_back(std::move(ex));
  };
  if (args.has("text")) add({{"text", args.str("text")}}, "--text");
  if (args.has("input")) {
    std::ifstream in(args.str("input"));
    if (!in) throw UsageError("avey predict: cannot read " + args.str("input"));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) throw UsageError(fmt::format("{}:{}: not a JSON object", args.str("input"), n));
      add(j, fmt::format("{}:{}", args.str("input"), n));
    }
  }
  if (task.examples.empty()) throw UsageError("avey predict: give --text or --input (nothing to label)");
  return task;
}

// Runs of tokens predicted with one label (not "O") as character spans of the text.
nlohmann::json spans_of(const std::string& text, const std::vector<int32_t>& ids, const std::vector<int32_t>& pred,
                        const FinetunedInfo& info, const data::Tokenizer& tok) {
  const std::vector<int64_t> char_at = data::char_to_byte_offsets(text);
  auto to_char = [&](int64_t byte) {  // the first character starting at or after the byte
    return int64_t(std::lower_bound(char_at.begin(), char_at.end(), byte) - char_at.begin());
  };
  nlohmann::json out = nlohmann::json::array();
  int64_t pos = 0, start = -1, end = 0;
  int32_t open = -1;
  auto close = [&] {
    if (open < 0) return;
    const int64_t s = to_char(start), e = std::min(to_char(end), int64_t(char_at.size()) - 1);
    out.push_back({{"start", s}, {"end", e}, {"label", info.labels[size_t(open)]},
                   {"text", text.substr(size_t(char_at[size_t(s)]), size_t(char_at[size_t(e)] - char_at[size_t(s)]))}});
    open = -1;
  };
  for (size_t i = 0; i < ids.size() && pos < int64_t(text.size()); ++i) {
    const std::string piece = tok.decode({ids[i]});
    const int64_t content = pos + int64_t(std::min(piece.find_first_not_of(" \t\r\n"), piece.size()));
    const int64_t piece_end = std::min(pos + int64_t(piece.size()), int64_t(text.size()));
    pos = piece_end;
    const bool outside = info.labels[size_t(pred[i])] == "O";
    if (outside || pred[i] != open) close();
    if (outside) continue;
    if (open < 0) open = pred[i], start = content;
    end = piece_end;
  }
  close();
  return out;
}

int run_predict(int argc, char** argv) {
  Args args("predict", "Label text with a fine-tuned Avey-B (avey finetune's folder): one JSON line per example.");
  args.option("model", "DIR", "a fine-tuned folder (avey finetune's best/: config.json with architectures and id2label)");
  args.option("text", "STR", "a text to label");
  args.option("input", "FILE", "JSON lines in the task's form (data/task_file.h); labels are ignored");
  args.option("logits-out", "FILE", "also write every example's input ids and logits (for the reference check)");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  if (!args.parse(argc, argv)) return 0;
  if (!args.has("model")) throw UsageError("avey predict: --model DIR is required");
  const ModelFolder folder = open_model_folder(args.str("model"));
  const FinetunedInfo info = read_finetuned(folder);
  const std::unique_ptr<avey::Model> model = load_model(folder, resolve_device(args.str("device")), engine::DType::F32);
  const std::unique_ptr<data::Tokenizer> tok = tokenizer_for(info.tokenizer, info.config);
  const data::RawTask task = read_inputs(args, info);
  const std::vector<data::EncodedExample> ex = data::encode_task(task, info.labels, *tok, info.config.seq_len, "input");
  nlohmann::json logits_out = {{"examples", nlohmann::json::array()}};
  data::Progress progress(ex.size() > 1 ? "predict" : "");
  for (size_t e = 0; e < ex.size(); ++e) {
    const int64_t T = int64_t(ex[e].ids.size());
    const engine::Tensor logits = model->task_logits(engine::Tensor::from(ex[e].ids, {1, T})).to(engine::Device::CPU);
    const std::vector<float> v = logits.to(engine::DType::F32).to_vector<float>();
    const size_t L = info.labels.size(), rows = v.size() / L;
    std::vector<int32_t> pred(rows);
    for (size_t r = 0; r < rows; ++r)
      pred[r] = int32_t(std::max_element(v.begin() + long(r * L), v.begin() + long((r + 1) * L)) - (v.begin() + long(r * L)));
    nlohmann::json line;
    if (info.kind == data::TaskKind::Sequence) {
      const double top = *std::max_element(v.begin(), v.end());
      double z = 0;
      for (float x : v) z += std::exp(double(x) - top);
      nlohmann::json probs;
      for (size_t l = 0; l < L; ++l) probs[info.labels[l]] = std::exp(double(v[l]) - top) / z;
      line = {{"text", task.examples[e].text}, {"label", info.labels[size_t(pred[0])]}, {"probabilities", probs}};
    } else if (info.kind == data::TaskKind::TokenWords) {
      nlohmann::json labels = nlohmann::json::array();
      for (int32_t w : data::word_votes(ex[e], pred, L)) labels.push_back(w < 0 ? "" : info.labels[size_t(w)]);
      line = {{"tokens", task.examples[e].words}, {"labels", labels}};
    } else {
      line = {{"text", task.examples[e].text}, {"spans", spans_of(task.examples[e].text, ex[e].ids, pred, info, *tok)}};
    }
    fmt::print("{}\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (args.has("logits-out")) logits_out["examples"].push_back({{"input_ids", {ex[e].ids}}, {"logits", v}});
    progress.update(double(e + 1) / double(ex.size()), fmt::format("{}/{} examples", e + 1, ex.size()));
  }
  if (args.has("logits-out")) engine::write_file_atomic(args.str("logits-out"), logits_out.dump() + "\n");
  return 0;
}

const RegisterCommand reg{{"predict", "label text with a fine-tuned Avey-B", run_predict}};

}  // namespace
