// Reading text files, tokenising them as documents, and the default corpus's shards.
#include "data/corpus.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "data/data_dir.h"
#include "data/shard.h"

namespace data {

namespace fs = std::filesystem;

namespace {

// "chapter_2" < "chapter_10": runs of digits compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i0 = i, j0 = j;
      while (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]))) ++i;
      while (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]))) ++j;
      std::string x = a.substr(i0, i - i0), y = b.substr(j0, j - j0);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read text file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> text_files(const std::string& path) {
  if (fs::is_regular_file(path)) return {path};
  if (!fs::is_directory(path)) throw std::runtime_error("no such file or folder: " + path);
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(path))
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
  if (files.empty()) throw std::runtime_error("folder " + path + " holds no *.txt files");
  std::sort(files.begin(), files.end(), natural_less);
  return files;
}

std::vector<uint32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& files,
                                     const std::string& progress_label) {
  std::vector<uint32_t> tokens;
  size_t bytes = 0;
  bool live = !progress_label.empty() && isatty(fileno(stderr));
  for (size_t i = 0; i < files.size(); ++i) {
    std::string text = read_text(files[i]);
    bytes += text.size();
    tokens.push_back(static_cast<uint32_t>(tok.eot()));
    for (int32_t id : tok.encode_ordinary(text)) tokens.push_back(static_cast<uint32_t>(id));
    if (live || (!progress_label.empty() && i + 1 == files.size()))
      fmt::print(stderr, "\r{}: {}/{} files, {:.2f} MB, {} tokens{}", progress_label, i + 1, files.size(), bytes / 1e6,
                 tokens.size(), i + 1 == files.size() ? "\n" : "");
  }
  return tokens;
}

CorpusSplit default_corpus_files() {
  std::string dir = data_dir() + "/moby-dick/";
  if (!fs::exists(dir + "chapter_1.txt"))
    throw std::runtime_error("the default corpus is missing from " + dir + " (run scripts/fetch-data)");
  CorpusSplit split{{dir + "etymology.txt", dir + "extracts.txt"}, {}};
  for (int chapter = 1; chapter <= 135; ++chapter)
    (chapter <= 125 ? split.train : split.val).push_back(fmt::format("{}chapter_{}.txt", dir, chapter));
  split.val.push_back(dir + "epilogue.txt");
  return split;
}

CorpusShards prepare_default_corpus(const Tokenizer& tok, bool verbose) {
  CorpusSplit split = default_corpus_files();
  std::string dir = data_dir() + "/shards";
  fs::create_directories(dir);
  CorpusShards out{fmt::format("{}/moby-dick-{}-train.bin", dir, tok.name()),
                   fmt::format("{}/moby-dick-{}-val.bin", dir, tok.name()), 0, 0};
  auto prepare = [&](const std::string& path, const std::vector<std::string>& files, const char* part) -> int64_t {
    if (!fs::exists(path)) {
      std::string label = verbose ? fmt::format("moby-dick {} ({})", part, tok.name()) : "";
      write_shard(path, tok.name(), tokenize_files(tok, files, label));
    }
    Shard shard = read_shard(path);
    if (shard.tokenizer != tok.name())
      throw std::runtime_error(fmt::format("{}: shard holds {} tokens, expected {}", path, shard.tokenizer, tok.name()));
    if (verbose) fmt::print(stderr, "moby-dick {}: {} tokens in {}\n", part, shard.tokens.size(), path);
    return static_cast<int64_t>(shard.tokens.size());
  };
  out.train_tokens = prepare(out.train, split.train, "train");
  out.val_tokens = prepare(out.val, split.val, "val");
  return out;
}

}  // namespace data
