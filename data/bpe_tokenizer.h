// Byte-level byte-pair encoding over a tiktoken rank file, exactly as OpenAI's tiktoken does it.
// A rank file lists every token as "base64(bytes) rank", one per line; the rank is the token id
// and also the merge priority. Encoding pre-tokenises the text (Pretokenizer), then for each
// piece starts from its single bytes and repeatedly merges the adjacent pair whose joined bytes
// have the lowest rank (the leftmost on ties) until no adjacent pair is a token.
//
// Speed: the rank table is an open-addressing hash table over one byte arena; a piece that is
// already a whole token is one lookup; other pieces are merged once per encode() call and then
// copied from a pre-token -> ids cache; short pieces merge by scanning a small array (what
// tiktoken does), long ones (runs of spaces, digits, letters) with a heap, so no piece is quadratic.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/pretokenizer.h"
#include "data/tokenizer.h"

namespace data {

class BpeTokenizer final : public Tokenizer {
 public:
  // Reads the rank file at path; eot is the id given to <|endoftext|> (50256 for p50k and r50k).
  BpeTokenizer(const std::string& path, std::string name, int32_t eot);

  std::vector<int32_t> encode(std::string_view text) const override { return encode_with_eot(text); }
  std::vector<int32_t> encode_ordinary(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  int32_t eot() const override { return eot_; }
  std::string name() const override { return name_; }

 private:
  int32_t rank(std::string_view bytes) const;  // the token whose bytes these are, or -1
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_by_scan(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_by_heap(std::string_view piece, std::vector<int32_t>& out) const;
  std::string_view bytes_of(int32_t id) const { return {bytes_.data() + spans_[id].first, spans_[id].second}; }

  std::string name_;
  int32_t eot_, vocab_size_ = 0;
  Pretokenizer pretokenizer_;
  std::string bytes_;                                  // every token's bytes, back to back
  std::vector<std::pair<uint32_t, uint32_t>> spans_;   // id -> (offset, length) in bytes_; length 0: no token
  std::vector<std::pair<int32_t, uint32_t>> slots_;    // hash table: (id or -1, hash tag)
  size_t mask_ = 0;
};

}  // namespace data
