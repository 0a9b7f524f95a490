// Fine-tuning tasks as JSON lines (docs/finetune.md), one example per line, in one of three forms:
//
//   sequence classification   {"text": "...", "label": "spam"}           label: a string or an integer
//   token classification      {"tokens": ["Call", "me", "Ishmael"], "labels": ["O", "O", "B-PER"]}
//                             (words joined by single spaces; each word one label)
//   token classification,     {"text": "...", "spans": [{"start": 7, "end": 14, "label": "answer"}]}
//   by character spans        (offsets in Unicode characters, end exclusive; tokens outside every
//                             span are "O")
//
// A task folder holds train.jsonl, val.jsonl and test.jsonl (val and test optional). Encoding
// follows the reference's evaluation code (rimads/avey-b EncodEval): the text, then end-of-text,
// cut to max_len tokens. Words: every sub-token of a word takes the word's label (a token belongs
// to the first word that ends after the token starts, so " Ishmael" belongs to "Ishmael"),
// end-of-text is ignored (-100). Spans: a token takes a span's label when its text, leading
// whitespace aside, overlaps the span; end-of-text is "O".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace data {

enum class TaskKind { Sequence, TokenWords, TokenSpans };
const char* name_of(TaskKind kind);  // "sequence", "token (words)", "token (spans)"

// One example as read (labels as strings; integers are kept as their decimal text).
struct RawExample {
  std::string text;                    // sequence and spans
  std::string label;                   // sequence
  std::vector<std::string> words, word_labels;  // token (words)
  struct Span {
    int64_t start = 0, end = 0;  // Unicode characters, end exclusive
    std::string label;
  };
  std::vector<Span> spans;             // token (spans)
};

struct RawTask {
  TaskKind kind = TaskKind::Sequence;
  std::vector<RawExample> examples;
};

// Reads a JSON-lines task file: one clear error naming the file, the line and the key for a bad
// line, a missing or mistyped field, words and labels of different lengths, a span outside its
// text, or lines of different forms. Empty lines are skipped.
RawTask read_task_file(const std::string& path);

// The label names of a task, in id order: sequence labels sorted (integers numerically, then
// strings); token labels with "O" first, then sorted. Built from the training file.
std::vector<std::string> task_labels(const RawTask& task);

// An example as the model sees it.
struct EncodedExample {
  std::vector<int32_t> ids;
  int32_t label = -100;               // sequence: the class id
  std::vector<int32_t> token_labels;  // token: one per id (-100: not scored)
  std::vector<int32_t> word_of;       // token (words): the word each id belongs to, -1 for none
  int64_t words = 0;                  // token (words): how many words the example has
};

// Encodes every example; a label the label list lacks is one clear error naming the file's
// example (a validation label never seen in training). max_len >= 2.
std::vector<EncodedExample> encode_task(const RawTask& task, const std::vector<std::string>& labels,
                                        const Tokenizer& tok, int64_t max_len, const std::string& what);

// Byte offsets of Unicode character positions in UTF-8 text (chars[i] = the byte where character
// i starts; chars.back() = text.size()). Invalid bytes count as one character each.
std::vector<int64_t> char_to_byte_offsets(const std::string& text);

}  // namespace data
