// ByteTokenizer: bytes are their own ids.
#include "data/byte_tokenizer.h"

#include <stdexcept>

namespace data {

std::vector<int32_t> ByteTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids) {
    if (id == eot()) text += kEndOfText;
    else if (id >= 0 && id < 256) text += static_cast<char>(id);
    else throw std::runtime_error("bytes tokenizer: token id " + std::to_string(id) + " is outside 0..256");
  }
  return text;
}

}  // namespace data
