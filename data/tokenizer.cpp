// The parts every tokenizer shares: splitting on <|endoftext|>, and choosing one by name.
#include "data/tokenizer.h"

#include <filesystem>
#include <stdexcept>

#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/data_dir.h"

namespace data {

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode_with_eot(std::string_view text) const {
  std::vector<int32_t> ids;
  for (;;) {
    size_t at = text.find(kEndOfText);
    std::vector<int32_t> part = encode_ordinary(text.substr(0, at));
    ids.insert(ids.end(), part.begin(), part.end());
    if (at == std::string_view::npos) return ids;
    ids.push_back(eot());
    text.remove_prefix(at + kEndOfText.size());
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& name) {
  if (name == "bytes") return std::make_unique<ByteTokenizer>();
  if (name == "p50k" || name == "r50k") {
    std::string path = data_dir() + "/" + name + "_base.tiktoken";
    if (!std::filesystem::exists(path))
      throw std::runtime_error("tokenizer file " + path + " is missing (run scripts/fetch-data)");
    return std::make_unique<BpeTokenizer>(path, name, 50256);
  }
  throw std::runtime_error("unknown tokenizer '" + name + "' (expected p50k, r50k or bytes)");
}

}  // namespace data
