// Scores of a fine-tuned model's predictions on a task (docs/finetune.md):
//   sequence tasks   accuracy (the reference's SC score) and macro-F1 (the mean over the classes
//                    seen in gold or predictions of 2 P R / (P + R), each class one-vs-rest)
//   token (words)    entity F1: entities are the maximal runs a BIO tagging names (B-X starts an
//                    X, I-X continues an X or starts one after anything else, O ends; a label
//                    without a B-/I- prefix is its own type, runs of it one entity), matched
//                    exactly (type, first word, last word), micro-averaged over the set; and the
//                    word accuracy. A word's prediction is its sub-tokens' majority (ties to the
//                    lower label id), as the reference's TC evaluation.
//   token (spans)    token-set F1 (the reference's QA / needle score): per example, the positions
//                    predicted outside "O" against the gold ones (an empty set counts as {0}),
//                    F1 averaged over the examples; and the token accuracy.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/task_file.h"

namespace data {

struct TaskScores {
  std::string primary;                    // the metric a learning-rate grid is chosen by
  std::map<std::string, double> metrics;  // name -> value in [0, 1]
};

// predictions[e]: one class id (sequence) or one per token of examples[e].ids (token tasks).
TaskScores score_task(TaskKind kind, const std::vector<std::string>& labels, const std::vector<EncodedExample>& examples,
                      const std::vector<std::vector<int32_t>>& predictions);

// A word's label from its sub-tokens' predictions: the majority, ties to the lower id (-1: every
// sub-token of the word was cut off by max_len). One per word of ex (token (words) tasks).
std::vector<int32_t> word_votes(const EncodedExample& ex, const std::vector<int32_t>& pred, size_t labels);

// The pieces, for tests.
double macro_f1(const std::vector<int32_t>& gold, const std::vector<int32_t>& pred);
struct Entity {
  int64_t first = 0, last = 0;
  std::string type;
  bool operator<(const Entity& o) const;
};
std::vector<Entity> entities_of(const std::vector<std::string>& tags);
double token_set_f1(const std::vector<int64_t>& gold, const std::vector<int64_t>& pred);

// The metric's name as a table header ("accuracy", "macro-F1", "entity F1", "token-set F1").
std::string metric_title(const std::string& metric);

}  // namespace data
