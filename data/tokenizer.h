// Tokenizers turn text (bytes) into token ids and back. Two kinds implement this interface:
// BpeTokenizer (OpenAI's byte-level BPE: p50k_base, which Avey trains with, and r50k_base) and
// ByteTokenizer (one id per byte, no files needed). Every tokenizer has one special token,
// end-of-text, written "<|endoftext|>": encode() turns that text into eot(), encode_ordinary()
// encodes it as ordinary text (like tiktoken's encode_ordinary), and decode() writes it back.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace data {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

class Tokenizer {
 public:
  virtual ~Tokenizer();
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;  // <|endoftext|> -> eot()
  virtual std::vector<int32_t> encode_ordinary(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;  // bytes, may be invalid UTF-8
  virtual int32_t vocab_size() const = 0;  // 50281 for p50k, 50257 for r50k, 257 for bytes
  virtual int32_t eot() const = 0;         // 50256 for p50k and r50k, 256 for bytes
  virtual std::string name() const = 0;    // "p50k", "r50k" or "bytes"

 protected:
  // encode() for every tokenizer: encode_ordinary() between the <|endoftext|> markers, eot() for each.
  std::vector<int32_t> encode_with_eot(std::string_view text) const;
};

// "p50k" or "r50k" (reads data_dir()/<name>_base.tiktoken) or "bytes".
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& name);

}  // namespace data
