// A fine-tuned Avey-B's folder in the reference's layout: what transformers' save_pretrained
// writes (cli/model_folder.h's write_reference_folder), so that rimads/avey-b's
// AveyForSequenceClassification / AveyForTokenClassification .from_pretrained(DIR) load it
// (tests/reference/avey_b_heads_ref.py check-folder checks that):
//   config.json        the reference's keys for model_type "avey-b" (cli/model_config.h: the head
//                      class in architectures, num_labels, max_position_embeddings = the example
//                      length), and id2label, label2id, problem_type (transformers'), and the
//                      engine's avey_task (sequence | token (words) | token (spans)), which
//                      transformers keeps as a plain attribute
//   model.safetensors  the encoder's tensors and the head's (reference names), fp32
#pragma once
#include <string>
#include <vector>

#include "avey/model.h"
#include "cli/model_folder.h"
#include "data/task_file.h"

struct FinetunedInfo {
  avey::Config config;              // avey-b with its head; seq_len: tokens per example
  std::vector<std::string> labels;  // label names in id order
  data::TaskKind kind = data::TaskKind::Sequence;
  std::string tokenizer = "p50k";
};

void write_finetuned(const std::string& dir, const avey::Model& model, const FinetunedInfo& info);
// The folder's task: one clear error naming config.json for a folder without a head or labels.
FinetunedInfo read_finetuned(const ModelFolder& folder);

// A pretrained Avey-B to fine-tune from (any folder open_model_folder reads): its config without
// a head; load_encoder copies its encoder's tensors into `model`, whose head keeps its fresh init.
avey::Config pretrained_config(const ModelFolder& folder);
void load_encoder(const ModelFolder& folder, avey::Model& model);

// Predictions for every example (a class id, or one per token for token tasks): examples of one
// length batched together (at most `batch`), so no example sees padding. An empty progress label
// prints nothing.
std::vector<std::vector<int32_t>> predict_examples(avey::Model& model, const std::vector<data::EncodedExample>& ex,
                                                   int64_t batch, const std::string& progress_label);
