// The named corpora's files and splits, and their cached shards.
#include "data/corpus.h"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>

#include "data/data_dir.h"
#include "data/paths.h"
#include "data/shard.h"
#include "data/token_stream.h"
#include "data/tokenized_files.h"

namespace data {

namespace fs = std::filesystem;

namespace {

CorpusSplit moby_dick_files() {
  std::string dir = data_dir() + "/moby-dick/";
  if (!fs::exists(dir + "chapter_1.txt"))
    throw std::runtime_error("the default corpus is missing from " + dir + " (run scripts/fetch-data)");
  CorpusSplit split{{dir + "etymology.txt", dir + "extracts.txt"}, {}};
  for (int chapter = 1; chapter <= 135; ++chapter)
    (chapter <= 125 ? split.train : split.val).push_back(fmt::format("{}chapter_{}.txt", dir, chapter));
  split.val.push_back(dir + "epilogue.txt");
  return split;
}

CorpusSplit research_files() {
  const CorpusSplit moby = moby_dick_files();
  std::vector<std::vector<std::string>> sources{moby.train};
  sources[0].insert(sources[0].end(), moby.val.begin(), moby.val.end());
  for (const char* name : {"sotu", "factbook"}) {
    const std::string dir = data_dir() + "/" + name;
    if (!fs::exists(dir + "/SHA256SUMS"))
      throw std::runtime_error("the research corpus is missing " + dir + " (run scripts/fetch-data --research)");
    sources.push_back(expand_path(dir, {".txt"}));
  }
  CorpusSplit split;
  for (const auto& files : sources)
    for (size_t i = 0; i < files.size(); ++i) (i % 10 == 9 ? split.val : split.train).push_back(files[i]);
  return split;
}

}  // namespace

bool is_named_corpus(const std::string& name) { return name == "moby-dick" || name == "research"; }

CorpusSplit corpus_files(const std::string& name) {
  if (name == "moby-dick") return moby_dick_files();
  if (name == "research") return research_files();
  throw std::runtime_error("unknown corpus '" + name + "' (expected moby-dick or research)");
}

CorpusShards prepare_corpus(const std::string& name, const Tokenizer& tok, bool verbose) {
  CorpusSplit split = corpus_files(name);
  std::string dir = data_dir() + "/shards";
  fs::create_directories(dir);
  CorpusShards out{fmt::format("{}/{}-{}-train.bin", dir, name, tok.name()),
                   fmt::format("{}/{}-{}-val.bin", dir, name, tok.name()), 0, 0};
  auto prepare = [&](const std::string& path, const std::vector<std::string>& files, const char* part) -> int64_t {
    if (!fs::exists(path)) {
      TokenizeOptions options;
      if (verbose) options.progress = fmt::format("{} {} ({})", name, part, tok.name());
      TokenizedFiles ids(tok, files, options);
      write_shard(path, tok.name(), id_width(tok.vocab_size()),
                  [&](uint32_t* o, size_t n) { return ids.read(o, n); });
    }
    TokenStream shard = TokenStream::open({path});
    if (shard.tokenizer() != tok.name())
      throw std::runtime_error(fmt::format("{}: shard holds {} tokens, expected {}", path, shard.tokenizer(), tok.name()));
    if (verbose) fmt::print(stderr, "{} {}: {} tokens in {}\n", name, part, shard.size(), path);
    return static_cast<int64_t>(shard.size());
  };
  out.train_tokens = prepare(out.train, split.train, "train");
  out.val_tokens = prepare(out.val, split.val, "val");
  return out;
}

}  // namespace data
