// open_data: a corpus name, shards or text, and where the validation set comes from.
#include "data/splits.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "data/corpus.h"
#include "data/paths.h"
#include "data/tokenized_files.h"

namespace data {

namespace fs = std::filesystem;

bool is_validation_name(const std::string& path) {
  std::string word;
  for (char c : fs::path(path).stem().string() + " ") {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += char(std::tolower(static_cast<unsigned char>(c)));
    } else {
      if (word == "val" || word == "validation") return true;
      word.clear();
    }
  }
  return false;
}

namespace {

// The last 10% of the ids validate.
DataSplit last_tenth(const TokenStream& all) {
  const uint64_t cut = all.size() - all.size() / 10;
  return {all.slice(0, cut), all.slice(cut, all.size())};
}

DataSplit open_shards(const std::vector<std::string>& files, const Tokenizer& tok) {
  std::vector<std::string> train, val;
  for (const auto& f : files) (is_validation_name(f) ? val : train).push_back(f);
  auto open = [&](const std::vector<std::string>& group) {
    TokenStream s = TokenStream::open(group);
    if (s.tokenizer() != tok.name())
      throw std::runtime_error(fmt::format("{} holds {} ids but the run's tokenizer is {} (train with --tokenizer {})",
                                           group.front(), s.tokenizer(), tok.name(), s.tokenizer()));
    return s;
  };
  if (train.empty() || val.empty()) return last_tenth(open(files));
  return {open(train), open(val)};
}

}  // namespace

DataSplit open_data(const std::string& path, const Tokenizer& tok, bool verbose) {
  DataSplit split;
  if (path.empty() || is_named_corpus(path)) {
    CorpusShards shards = prepare_corpus(path.empty() ? "moby-dick" : path, tok, verbose);
    split = {TokenStream::open({shards.train}), TokenStream::open({shards.val})};
  } else {
    std::vector<std::string> files = expand_path(path, {".bin", ".txt", ".jsonl"});
    const auto shards = std::count_if(files.begin(), files.end(), [](const std::string& f) { return fs::path(f).extension() == ".bin"; });
    if (shards > 0 && size_t(shards) < files.size())
      throw std::runtime_error(path + " mixes shards (*.bin) and text files; give one kind");
    split = shards > 0 ? open_shards(files, tok) : last_tenth(tokenize_files(tok, files, verbose ? "tokenizing" : ""));
  }
  if (split.val.size() < 2)
    throw std::runtime_error(fmt::format("{}: the validation set has {} tokens; it needs at least 2 (one to predict)",
                                         path.empty() ? "moby-dick" : path, split.val.size()));
  return split;
}

}  // namespace data
