// TokenStream: a list of parts (mappings or vectors) with their first ids; reads cross parts.
#include "data/token_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "data/mapped_file.h"
#include "data/shard.h"

namespace data {

TokenStream::TokenStream(std::vector<uint32_t> ids) : size_(ids.size()) {
  auto owner = std::make_shared<const std::vector<uint32_t>>(std::move(ids));
  parts_.push_back({owner, reinterpret_cast<const unsigned char*>(owner->data()), 4, 0});
}

TokenStream TokenStream::open(const std::vector<std::string>& paths) {
  TokenStream s;
  for (const std::string& path : paths) {
    auto file = std::make_shared<const MappedFile>(path);
    ShardLayout layout = parse_shard(path, file->data(), file->size());
    if (s.tokenizer_.empty()) s.tokenizer_ = layout.tokenizer;
    if (layout.tokenizer != s.tokenizer_)
      throw std::runtime_error(fmt::format("{} holds {} ids but {} holds {} ids (one stream, one tokenizer)", path,
                                           layout.tokenizer, paths.front(), s.tokenizer_));
    if (layout.count == 0) continue;
    s.parts_.push_back({file, file->data() + layout.offset, layout.width, s.size_});
    s.size_ += layout.count;
  }
  return s;
}

void TokenStream::read(uint64_t at, uint64_t n, uint32_t* out) const {
  if (at > size_ || n > size_ - at)
    throw std::runtime_error(fmt::format("token stream: ids [{}, {}) are past its end ({} ids)", at, at + n, size_));
  uint64_t pos = begin_ + at;
  // The last part starting at or before pos.
  size_t k = std::upper_bound(parts_.begin(), parts_.end(), pos, [](uint64_t p, const Part& part) { return p < part.start; }) -
             parts_.begin() - 1;
  while (n > 0) {
    const Part& part = parts_[k];
    const uint64_t end = k + 1 < parts_.size() ? parts_[k + 1].start : begin_ + size_;
    const uint64_t take = std::min(n, end - pos);
    widen_ids(part.ids + (pos - part.start) * part.width, part.width, take, out);
    out += take;
    pos += take;
    n -= take;
    ++k;
  }
}

std::vector<uint32_t> TokenStream::read(uint64_t at, uint64_t n) const {
  std::vector<uint32_t> ids(n);
  read(at, n, ids.data());
  return ids;
}

TokenStream TokenStream::slice(uint64_t begin, uint64_t end) const {
  if (begin > end || end > size_)
    throw std::runtime_error(fmt::format("token stream: slice [{}, {}) of a stream of {} ids", begin, end, size_));
  TokenStream s = *this;
  s.begin_ = begin_ + begin;
  s.size_ = end - begin;
  return s;
}

}  // namespace data
