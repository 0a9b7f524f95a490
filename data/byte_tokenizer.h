// The byte-level tokenizer: token i < 256 is byte i, token 256 is end-of-text. It needs no data
// files, so tests and tiny demos can run anywhere.
#pragma once
#include "data/tokenizer.h"

namespace data {

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override { return encode_with_eot(text); }
  std::vector<int32_t> encode_ordinary(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return 257; }
  int32_t eot() const override { return 256; }
  std::string name() const override { return "bytes"; }
};

}  // namespace data
