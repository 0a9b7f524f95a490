#include "data/task_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace data {

const char* name_of(TaskKind kind) {
  switch (kind) {
    case TaskKind::Sequence: return "sequence";
    case TaskKind::TokenWords: return "token (words)";
    case TaskKind::TokenSpans: return "token (spans)";
  }
  return "?";
}

namespace {

[[noreturn]] void bad_line(const std::string& path, int64_t line, const std::string& why) {
  throw std::runtime_error(fmt::format("{}:{}: {}", path, line, why));
}

// A label: a string, or an integer kept as its decimal text.
std::string label_text(const nlohmann::json& v, const std::string& path, int64_t line, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  bad_line(path, line, fmt::format("'{}' must be a string or an integer, got {}", key, v.dump()));
}

const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& path, int64_t line) {
  if (!j.contains(key)) bad_line(path, line, fmt::format("missing key '{}'", key));
  return j.at(key);
}

std::string text_field(const nlohmann::json& j, const char* key, const std::string& path, int64_t line) {
  const nlohmann::json& v = field(j, key, path, line);
  if (!v.is_string()) bad_line(path, line, fmt::format("'{}' must be a string, got {}", key, v.dump().substr(0, 60)));
  return v.get<std::string>();
}

RawExample parse_example(const nlohmann::json& j, TaskKind kind, const std::string& path, int64_t line) {
  RawExample ex;
  if (kind == TaskKind::Sequence) {
    ex.text = text_field(j, "text", path, line);
    ex.label = label_text(field(j, "label", path, line), path, line, "label");
  } else if (kind == TaskKind::TokenWords) {
    const nlohmann::json &w = field(j, "tokens", path, line), &l = field(j, "labels", path, line);
    if (!w.is_array() || !l.is_array()) bad_line(path, line, "'tokens' and 'labels' must be arrays");
    if (w.size() != l.size())
      bad_line(path, line, fmt::format("{} tokens but {} labels (one label per token)", w.size(), l.size()));
    if (w.empty()) bad_line(path, line, "no tokens");
    for (size_t i = 0; i < w.size(); ++i) {
      if (!w[i].is_string() || w[i].get<std::string>().empty())
        bad_line(path, line, fmt::format("token {} must be a non-empty string, got {}", i, w[i].dump()));
      ex.words.push_back(w[i].get<std::string>());
      ex.word_labels.push_back(label_text(l[i], path, line, fmt::format("labels[{}]", i)));
    }
  } else {
    ex.text = text_field(j, "text", path, line);
    const nlohmann::json& s = field(j, "spans", path, line);
    if (!s.is_array()) bad_line(path, line, "'spans' must be an array of {\"start\", \"end\", \"label\"}");
    const int64_t chars = int64_t(char_to_byte_offsets(ex.text).size()) - 1;
    for (const auto& sp : s) {
      if (!sp.is_object() || !sp.contains("start") || !sp.contains("end") || !sp.contains("label") ||
          !sp["start"].is_number_integer() || !sp["end"].is_number_integer())
        bad_line(path, line, "each span needs integer 'start', 'end' and a 'label', got " + sp.dump());
      RawExample::Span span{sp["start"].get<int64_t>(), sp["end"].get<int64_t>(), label_text(sp["label"], path, line, "label")};
      if (span.start < 0 || span.end <= span.start || span.end > chars)
        bad_line(path, line, fmt::format("span [{}, {}) is not inside the text's {} characters", span.start, span.end, chars));
      if (span.label == "O") bad_line(path, line, "a span's label cannot be 'O' (the label of every token outside the spans)");
      ex.spans.push_back(span);
    }
  }
  return ex;
}

// Is s a decimal integer (the text of an integer label)?
bool is_integer(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + long(i), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

RawTask read_task_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the task file " + path);
  RawTask task;
  bool first = true;
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) bad_line(path, line, "not a JSON object");
    const TaskKind kind = j.contains("tokens") ? TaskKind::TokenWords
                          : j.contains("spans") ? TaskKind::TokenSpans
                                                : TaskKind::Sequence;
    if (first) task.kind = kind, first = false;
    if (kind != task.kind)
      bad_line(path, line, fmt::format("a {} example in a file of {} examples", name_of(kind), name_of(task.kind)));
    task.examples.push_back(parse_example(j, kind, path, line));
  }
  if (task.examples.empty()) throw std::runtime_error(path + ": no examples");
  return task;
}

std::vector<std::string> task_labels(const RawTask& task) {
  std::set<std::string> seen;
  for (const RawExample& ex : task.examples) {
    if (task.kind == TaskKind::Sequence) seen.insert(ex.label);
    for (const std::string& l : ex.word_labels) seen.insert(l);
    for (const auto& s : ex.spans) seen.insert(s.label);
  }
  if (task.kind == TaskKind::TokenSpans) seen.insert("O");
  std::vector<std::string> labels(seen.begin(), seen.end());
  // integers numerically, then strings; "O" first for token tasks
  std::stable_sort(labels.begin(), labels.end(), [&](const std::string& a, const std::string& b) {
    if (task.kind != TaskKind::Sequence && (a == "O" || b == "O")) return a == "O" && b != "O";
    if (is_integer(a) != is_integer(b)) return is_integer(a);
    if (is_integer(a)) return std::stoll(a) < std::stoll(b);
    return a < b;
  });
  return labels;
}

std::vector<int64_t> char_to_byte_offsets(const std::string& text) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < text.size();) {
    out.push_back(int64_t(i));
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    for (size_t k = 1; k < n; ++k)  // a continuation byte missing: the lead byte alone is one character
      if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) >> 6) != 2) n = 1;
    i += n;
  }
  out.push_back(int64_t(text.size()));
  return out;
}

std::vector<EncodedExample> encode_task(const RawTask& task, const std::vector<std::string>& labels,
                                        const Tokenizer& tok, int64_t max_len, const std::string& what) {
  if (max_len < 2) throw std::invalid_argument("encode_task: max_len must be >= 2");
  std::map<std::string, int32_t> id_of;
  for (size_t i = 0; i < labels.size(); ++i) id_of[labels[i]] = int32_t(i);
  auto label_id = [&](const std::string& l, size_t example) {
    auto it = id_of.find(l);
    if (it == id_of.end())
      throw std::runtime_error(fmt::format("{}: example {} has the label '{}', which the training file never uses",
                                           what, example + 1, l));
    return it->second;
  };
  std::vector<EncodedExample> out;
  out.reserve(task.examples.size());
  for (size_t e = 0; e < task.examples.size(); ++e) {
    const RawExample& ex = task.examples[e];
    EncodedExample enc;
    std::string text = ex.text;
    std::vector<int64_t> word_end;  // token (words): byte where each word ends in the joined text
    if (task.kind == TaskKind::TokenWords) {
      text.clear();
      for (size_t w = 0; w < ex.words.size(); ++w) {
        text += (w ? " " : "") + ex.words[w];
        word_end.push_back(int64_t(text.size()));
      }
      enc.words = int64_t(ex.words.size());
    }
    enc.ids = tok.encode_ordinary(text);
    if (task.kind == TaskKind::Sequence) {
      enc.label = label_id(ex.label, e);
    } else {
      std::vector<std::pair<int64_t, int64_t>> span_bytes;
      std::vector<int32_t> span_label;
      if (task.kind == TaskKind::TokenSpans) {
        const std::vector<int64_t> at = char_to_byte_offsets(text);
        for (const auto& s : ex.spans) span_bytes.push_back({at[size_t(s.start)], at[size_t(s.end)]}), span_label.push_back(label_id(s.label, e));
      }
      const int32_t outside = task.kind == TaskKind::TokenSpans ? label_id("O", e) : -100;
      int64_t pos = 0;
      size_t word = 0;
      for (int32_t id : enc.ids) {
        const std::string piece = tok.decode({id});
        const int64_t start = pos, end = pos + int64_t(piece.size());
        pos = end;
        if (task.kind == TaskKind::TokenWords) {
          while (word < word_end.size() && word_end[word] <= start) ++word;  // the first word ending after the start
          const bool in_word = word < word_end.size();
          enc.word_of.push_back(in_word ? int32_t(word) : -1);
          enc.token_labels.push_back(in_word ? label_id(ex.word_labels[word], e) : -100);
        } else {
          const int64_t content = start + int64_t(std::min(piece.find_first_not_of(" \t\r\n"), piece.size()));
          int32_t l = outside;
          for (size_t s = 0; s < span_bytes.size(); ++s)
            if (content < end && content < span_bytes[s].second && end > span_bytes[s].first) l = span_label[s];
          enc.token_labels.push_back(l);
        }
      }
      enc.token_labels.push_back(outside);  // end-of-text
      if (task.kind == TaskKind::TokenWords) enc.word_of.push_back(-1);
    }
    enc.ids.push_back(tok.eot());
    if (int64_t(enc.ids.size()) > max_len) {
      enc.ids.resize(size_t(max_len));
      if (!enc.token_labels.empty()) enc.token_labels.resize(size_t(max_len));
      if (!enc.word_of.empty()) enc.word_of.resize(size_t(max_len));
    }
    out.push_back(std::move(enc));
  }
  return out;
}

}  // namespace data
