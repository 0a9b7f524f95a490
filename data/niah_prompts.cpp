#include "data/niah_prompts.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

namespace data::niah {

Task parse_task(const std::string& name) {
  if (name == "passkey") return Task::Passkey;
  if (name == "sniah1") return Task::Sniah1;
  if (name == "sniah2") return Task::Sniah2;
  throw std::invalid_argument("unknown task '" + name + "' (passkey, sniah1 or sniah2)");
}

const char* name_of(Task task) {
  switch (task) {
    case Task::Passkey: return "passkey";
    case Task::Sniah1: return "sniah1";
    case Task::Sniah2: return "sniah2";
  }
  return "?";
}

namespace {

// floor(n * depth / 100): exact for integral depths (n * depth is exact in a double, and the
// correctly rounded quotient of a multiple of 100 by 100 is that integer).
int64_t at_depth(int64_t n, double depth) {
  if (!(depth >= 0 && depth <= 100)) throw std::invalid_argument("needle depth must be within 0..100 percent");
  return int64_t(std::floor(double(n) * depth / 100.0));
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// A word ends a sentence when its last character, closing quotes and brackets aside, is . ! or ?.
bool ends_sentence(std::string_view w) {
  while (!w.empty()) {
    if (w.back() == '"' || w.back() == '\'' || w.back() == ')' || w.back() == ']') {
      w.remove_suffix(1);
    } else if (w.size() >= 3 && w.substr(w.size() - 3, 2) == "\xE2\x80" && (w.back() == '\x9D' || w.back() == '\x99')) {
      w.remove_suffix(3);  // the UTF-8 right double and single quotation marks
    } else {
      break;
    }
  }
  return !w.empty() && (w.back() == '.' || w.back() == '!' || w.back() == '?');
}

}  // namespace

// ---- passkey ----

const std::string kFiller = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

std::string filler(int64_t chars) {
  std::string out;
  out.reserve(size_t(std::max<int64_t>(chars, 0)));
  while (int64_t(out.size()) < chars) {
    if (!out.empty()) out += ' ';
    out += kFiller;
  }
  out.resize(size_t(std::max<int64_t>(chars, 0)));
  return out;
}

int64_t passkey_chars(int64_t length) {
  const int64_t chars = length * 375 / 100;  // floor(3.75 L)
  return length >= 1000 ? chars / 1000 * 1000 : chars;
}

std::string passkey_prompt(int64_t chars, double depth, const std::string& key) {
  const int64_t prefix = at_depth(chars, depth);
  std::string prompt = "\n";
  prompt += filler(prefix);
  prompt += "\nThe pass key is " + key + "\n";
  prompt += filler(chars - prefix);
  prompt += "\nThe pass key is";
  return prompt;
}

int64_t draw_passkey(engine::Rng& rng) { return 1 + int64_t(rng.below(49999)); }

std::vector<std::string> passkeys(size_t n, bool reference, uint64_t seed) {
  static const int64_t kReference[] = {2733, 33004, 23721, 5995, 17531};
  std::vector<std::string> out;
  for (size_t i = 0; reference && i < n && i < std::size(kReference); ++i) out.push_back(std::to_string(kReference[i]));
  engine::Rng rng(seed);
  while (out.size() < n) out.push_back(std::to_string(draw_passkey(rng)));
  return out;
}

// ---- RULER single needle ----

Haystack Haystack::repeat() { return Haystack(); }

Haystack Haystack::essay(const std::string& text) {
  Haystack h;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    if (j > i) {
      h.words_.emplace_back(text, i, j - i);
      h.ends_sentence_.push_back(ends_sentence(h.words_.back()));
    }
    i = j;
  }
  if (h.words_.empty()) throw std::invalid_argument("the haystack text has no words");
  return h;
}

std::string Haystack::context(int64_t units, double depth, const std::string& needle, int64_t start) const {
  std::string out;
  if (!is_essay()) {  // lines of F, the needle one of them
    const int64_t at = at_depth(units, depth);
    for (int64_t i = 0; i <= units; ++i) {
      if (i > 0) out += '\n';
      out += i == at ? needle : kFiller;
    }
    return out;
  }
  // The needle goes before sentence floor(s * depth / 100); a last sentence without its full stop counts.
  const size_t W = words_.size();
  auto word = [&](int64_t i) { return size_t(start + i) % W; };  // the haystack's word i
  int64_t sentences = 0;
  for (int64_t i = 0; i < units; ++i) sentences += ends_sentence_[word(i)] || i == units - 1;
  const int64_t target = at_depth(sentences, depth);
  int64_t at = 0;  // the first word of that sentence
  for (int64_t seen = 0; seen < target; ++at) seen += ends_sentence_[word(at)] || at == units - 1;
  auto append = [&](const std::string& piece) {
    if (!out.empty()) out += ' ';
    out += piece;
  };
  for (int64_t i = 0; i <= units; ++i) {
    if (i == at) append(needle);
    if (i < units) append(words_[word(i)]);
  }
  return out;
}

std::string needle_sentence(const Needle& needle) {
  return "One of the special magic numbers for " + needle.key + " is: " + needle.value + ".";
}

std::string ruler_prompt(const Haystack& haystack, int64_t units, double depth, const Needle& needle, int64_t start) {
  return "A special magic number is hidden within the following text. Make sure to memorize it. I will quiz you "
         "about the number afterwards.\n" +
         haystack.context(units, depth, needle_sentence(needle), start) + "\nWhat is the special magic number for " +
         needle.key + " mentioned in the provided text? The special magic number for " + needle.key +
         " mentioned in the provided text is";
}

int64_t ruler_units(const Haystack& haystack, const Tokenizer& tok, int64_t budget, const Needle& needle) {
  auto tokens = [&](int64_t n) { return int64_t(tok.encode_ordinary(ruler_prompt(haystack, n, 50, needle)).size()); };
  const int64_t base = tokens(0);
  if (base > budget) return 0;
  const int64_t probe = haystack.is_essay() ? 1000 : 100;
  const double per_unit = std::max(1e-3, double(tokens(probe) - base) / double(probe));
  const int64_t guess = int64_t(double(budget - base) / per_unit), margin = guess / 100 + 8;
  // lo fits, hi does not: bracket the estimate, then bisect.
  int64_t lo = 0, hi = guess + margin;
  auto split_at = [&](int64_t n) {
    if (tokens(n) <= budget) lo = n;
    else hi = n;
  };
  while (tokens(hi) <= budget) lo = hi, hi *= 2;
  if (guess - margin > lo) split_at(guess - margin);
  while (hi - lo > 1) split_at(lo + (hi - lo) / 2);
  return lo;
}

// ---- scoring ----

std::string strip(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

bool passkey_correct(std::string_view output, std::string_view key) { return strip(output) == strip(key); }

int64_t passkey_new_tokens(const Tokenizer& tok, const std::string& key) {
  return int64_t(tok.encode_ordinary(" " + key).size());
}

bool ruler_correct(std::string_view output, std::string_view value) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return lower(output).find(lower(value)) != std::string::npos;
}

}  // namespace data::niah
