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

}  // namespace data
