// A fine-tuned model's folder in the reference's layout (what transformers' save_pretrained
// writes, so that rimads/avey-b's AveyForSequenceClassification / AveyForTokenClassification
// .from_pretrained(DIR) load it; tests/reference/avey_b_heads_ref.py check-folder checks that):
//   config.json        model_type "avey-b", architectures [the head's class], the reference's
//                      AveyConfig keys (vocab_size, d_embed, n_layers, chunk_size, k, eps,
//                      context_len = max_position_embeddings), num_labels, id2label, label2id,
//                      problem_type; and the engine's own keys, which transformers keeps as plain
//                      attributes: avey_task (sequence | token (words) | token (spans)),
//                      avey_tokenizer, avey_max_len
//   model.safetensors  the encoder's tensors and the head's (reference names), fp32, {"format": "pt"}
#pragma once
#include <string>
#include <vector>

#include "avey/model.h"
#include "data/task_file.h"

struct FinetunedInfo {
  avey::Config config;              // avey-b with its head
  std::vector<std::string> labels;  // label names in id order
  data::TaskKind kind = data::TaskKind::Sequence;
  int64_t max_len = 512;            // tokens per example, end-of-text included
  std::string tokenizer = "p50k";
};

void write_finetuned(const std::string& dir, const avey::Model& model, const FinetunedInfo& info);
// One clear error naming config.json for a folder that is not a fine-tuned Avey-B.
FinetunedInfo read_finetuned(const std::string& dir);

// A pretrained Avey-B to fine-tune from: an `avey train` run folder or a fine-tuned folder.
avey::Config pretrained_config(const std::string& dir);
// Loads the folder's encoder tensors (every name but the head's) into `model`; its head keeps
// what it has (a fresh init): fine-tuning starts from the encoder with a new head.
void load_encoder(const std::string& dir, avey::Model& model);

// Predictions for every example (a class id, or one per token for token tasks): examples of one
// length batched together (at most `batch`), so no example sees padding. An empty progress label
// prints nothing.
std::vector<std::vector<int32_t>> predict_examples(avey::Model& model, const std::vector<data::EncodedExample>& ex,
                                                   int64_t batch, const std::string& progress_label);
