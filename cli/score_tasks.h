// Zero-shot multiple choice, scored by the rules of EleutherAI's lm-evaluation-harness
// (output_type multiple_choice), so that numbers compare with those it gives the reference.
//
// Task file: JSON lines, one question each:
//   {"context": "The cat sat on the", "choices": ["mat", "moon"], "gold": 0, "task": "demo"}
// ("task" is optional: results are given per task name, and over all). For each choice:
//   request      context, and continuation = delimiter (" ") + choice
//   encoding     trailing whitespace of the context moves to the continuation; the continuation's
//                tokens are those of encode(context + continuation) after encode(context)'s
//                (an empty context is the end-of-text token, and the continuation is encoded alone)
//   window       the model reads the last max_length + 1 tokens of context + continuation, but
//                the last one
//   ll           sum over the continuation's tokens of log p(token | everything before it)
// acc is 1 when the gold choice has the largest ll; acc_norm the same with ll / (the choice's
// length in characters, without the delimiter). Ties go to the first choice (numpy's argmax).
// Each metric's standard error is the sample standard deviation over questions / sqrt(n).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "avey/model.h"
#include "data/tokenizer.h"

struct Question {
  std::string task, context;
  std::vector<std::string> choices;
  int64_t gold = 0;
};

// The task file's text (`what` names it in errors, with the line number).
std::vector<Question> parse_questions(const std::string& jsonl, const std::string& what);

struct Request {
  std::vector<int32_t> context, continuation;
};
Request encode_request(const data::Tokenizer& tok, std::string context, std::string continuation);

// Sum of the continuation's token log-probabilities (fp64 log-softmax of the model's logits).
double loglikelihood(avey::Model& model, const Request& request, int64_t max_length);

int64_t utf8_length(const std::string& s);  // characters (code points), as Python's len()

struct Score {
  int64_t n = 0;
  double acc = 0, acc_stderr = 0, acc_norm = 0, acc_norm_stderr = 0;  // stderr: NaN when n < 2
};
// A question's result: whether the plain and the length-normalised arg-max hit the gold choice.
struct Outcome {
  bool acc, acc_norm;
};
Outcome judge(const Question& q, const std::vector<double>& lls);
Score summarise(const std::vector<Outcome>& outcomes);
