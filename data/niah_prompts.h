// Needle-in-a-haystack prompts and their scoring, written natively (docs/niah.md shows examples).
//
// passkey: the reference's test (avey-dpa avey/plot_niah_heatmap.py, after RWKV-X's pass-key test)
//   F        = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
//   F*       = F, F, F, ... joined by single spaces (as long as needed)
//   chars    = floor(3.75 L / 1000) * 1000 characters of filler for a nominal length of L tokens
//              (3.75 characters a token, whole thousands); below L = 1000, where that is 0, floor(3.75 L)
//   prefix   = floor(chars * depth / 100)
//   prompt   = "" \n F*[:prefix] \n "The pass key is {key}" \n F*[:chars - prefix] \n "The pass key is"
//              (both pieces of filler start at the beginning of F*; the first line is empty)
//   key      = randint(1, 50000), i.e. 1..49999; the reference's five runs (numpy seeds 0..4) use
//              2733, 33004, 23721, 5995, 17531
//   scoring  = greedy decoding of as many tokens as the key has; correct when the text, stripped of
//              surrounding whitespace, equals the key
//
// sniah1 / sniah2: RULER's niah_single_1 / niah_single_2 (one needle, one query; keys and values
// from niah_words.h):
//   needle   = "One of the special magic numbers for {key} is: {value}."
//   prompt   = "A special magic number is hidden within the following text. Make sure to memorize it.
//              I will quiz you about the number afterwards.\n{context}\nWhat is the special magic number
//              for {key} mentioned in the provided text? The special magic number for {key} mentioned in
//              the provided text is"
//              (RULER's template "Some special magic numbers are hidden ... What are all the special magic
//              numbers ...", made singular as RULER does when one value is asked, then its answer prefix)
//   context  = sniah1 ("repeat" haystack): n lines of F, the needle inserted as line floor(n * depth / 100);
//              sniah2 ("essay" haystack): the first n words of a public-domain text (whitespace runs made
//              one space, the text repeated when n exceeds it), the needle inserted before sentence
//              floor(s * depth / 100) of its s sentences, all joined by spaces. A sentence ends at a word
//              ending in . ! or ? (before closing quotes or brackets): RULER splits with nltk's punkt.
//   n        = the largest count whose prompt has at most `budget` tokens (RULER: the context length
//              minus the tokens to generate), found by binary search around a per-unit estimate
//   scoring  = the value occurs in the output, ignoring case (RULER's string_match_all)
//   RULER puts the needle at a random depth; here the depth is given, to draw a heatmap.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/niah_words.h"
#include "data/tokenizer.h"
#include "engine/random.h"

namespace data::niah {

enum class Task { Passkey, Sniah1, Sniah2 };
Task parse_task(const std::string& name);  // passkey | sniah1 | sniah2; throws std::invalid_argument
const char* name_of(Task task);

// ---- passkey ----

extern const std::string kFiller;  // F
std::string filler(int64_t chars);  // F*[:chars]
int64_t passkey_chars(int64_t length);
// depth: percent of the filler before the needle, 0..100 (integral depths give exact positions).
std::string passkey_prompt(int64_t chars, double depth, const std::string& key);
int64_t draw_passkey(engine::Rng& rng);  // randint(1, 50000)
// Keys of samples 0..n-1: with `reference`, the reference's five first; the rest (or all) drawn in
// turn from engine::Rng(seed).
std::vector<std::string> passkeys(size_t n, bool reference, uint64_t seed);

// ---- RULER single needle ----

class Haystack {
 public:
  static Haystack repeat();                        // sniah1: F, one a line; a unit is a line
  static Haystack essay(const std::string& text);  // sniah2: the text's words; a unit is a word
  bool is_essay() const { return !words_.empty(); }
  // `units` units with `needle` inserted at depth percent (see the top of this file); an essay's
  // units start at its word `start` (training documents take their haystack from anywhere).
  std::string context(int64_t units, double depth, const std::string& needle, int64_t start = 0) const;
  int64_t size() const { return int64_t(words_.size()); }  // an essay's words (0 for repeat)

 private:
  std::vector<std::string> words_;
  std::vector<char> ends_sentence_;  // per word
};

std::string needle_sentence(const Needle& needle);
std::string ruler_prompt(const Haystack& haystack, int64_t units, double depth, const Needle& needle, int64_t start = 0);
// The most units whose prompt has at most `budget` tokens; 0 when even the prompt without
// haystack is longer (the caller decides what to say).
int64_t ruler_units(const Haystack& haystack, const Tokenizer& tok, int64_t budget, const Needle& needle);

// ---- scoring ----

std::string strip(std::string_view s);  // Python's str.strip() for ASCII whitespace
bool passkey_correct(std::string_view output, std::string_view key);
// Tokens to generate for a passkey: those of the answer as it follows the prompt, " " + key. The
// reference generates len(encode(key)): with p50k the two agree on its five keys but not on 2,962
// of the keys 1..49999 ("362" is one token, " 362" two), where its count cuts a right answer
// short; with the byte tokenizer the space is always a token of its own.
int64_t passkey_new_tokens(const Tokenizer& tok, const std::string& key);
bool ruler_correct(std::string_view output, std::string_view value);

}  // namespace data::niah
