// A read-only stream of token ids that is never loaded whole: shard files (shard.h, either
// format) mapped into memory one after the other, or ids held in memory. Copies and slices are
// cheap and share the mappings. The training loader reads its windows from a stream, and the
// evaluator its validation set.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace data {

class TokenStream {
 public:
  TokenStream() = default;
  TokenStream(std::vector<uint32_t> ids);  // NOLINT(google-explicit-constructor): ids in memory are a stream too

  // The shards' ids one after the other. All must hold ids of one tokenizer: a shard of
  // another is one clear error naming both.
  static TokenStream open(const std::vector<std::string>& paths);

  uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::string& tokenizer() const { return tokenizer_; }  // the shards' tokenizer; "" in memory

  void read(uint64_t at, uint64_t n, uint32_t* out) const;  // ids [at, at + n); throws past the end
  std::vector<uint32_t> read(uint64_t at, uint64_t n) const;
  TokenStream slice(uint64_t begin, uint64_t end) const;  // ids [begin, end) of this stream

 private:
  struct Part {
    std::shared_ptr<const void> owner;  // the mapping or the vector the ids live in
    const unsigned char* ids;
    uint32_t width;
    uint64_t start;  // the part's first id in the whole (unsliced) stream
  };
  std::vector<Part> parts_;
  uint64_t begin_ = 0, size_ = 0;  // this stream: ids [begin_, begin_ + size_) of the parts
  std::string tokenizer_;
};

}  // namespace data
