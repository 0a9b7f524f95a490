// The GPT-2 pre-tokeniser: splits text into the pieces that byte-pair encoding then works on
// one at a time, using the regular expression of OpenAI's r50k/p50k encodings
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (contractions, words with one leading space, numbers, punctuation runs, and whitespace runs
// that leave their last space to the next word). PCRE2 runs it, JIT-compiled, in UTF mode with
// Unicode properties. Bytes that are not valid UTF-8 match nothing; each run of them becomes a
// piece of its own, so the pieces always cover the text exactly and any bytes can be encoded.
#pragma once
#include <functional>
#include <string_view>

namespace data {

class Pretokenizer {
 public:
  Pretokenizer();
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Calls piece() for each pre-token of text, in order. Thread-safe.
  void split(std::string_view text, const std::function<void(std::string_view)>& piece) const;

 private:
  void* code_;  // pcre2_code_8*, kept out of this header
};

// Where a long text may be cut so that encoding the two sides apart gives the ids of the whole:
// the first position p >= from with an ASCII letter before it, a space at it and an ASCII letter
// after ("word| word"). No pre-token crosses p (a run of letters stops at the space, and " word"
// starts there), and the pattern looks behind nothing, so the pieces after p are the same
// whatever came before. text.size() when there is no such place. (The byte tokenizer can be cut
// anywhere, so this holds for every tokenizer here.)
size_t safe_cut(std::string_view text, size_t from);

}  // namespace data
