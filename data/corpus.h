// Corpora: text files turned into token streams and shards.
//
// A corpus is a list of documents (text files); its token stream puts end-of-text before each
// document, so documents are joined by end-of-text and the model learns what follows one. The
// default corpus is Moby Dick, one document per chapter (fetched by scripts/fetch-data), split
// by chapter: validation is the last 10 chapters and the epilogue, training everything before
// (etymology, extracts, chapters 1-125). The table of contents is left out: it would leak the
// validation chapters' titles into training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace data {

// path itself if it is a file, else every *.txt file under the folder, in natural order
// (chapter_2 before chapter_10). Throws when there is nothing to read.
std::vector<std::string> text_files(const std::string& path);

// The token stream of the files as documents. With a label, prints a progress line to stderr.
std::vector<uint32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& files,
                                     const std::string& progress_label = "");

struct CorpusSplit {
  std::vector<std::string> train, val;  // file paths
};
CorpusSplit default_corpus_files();  // the Moby Dick chapters under data_dir()/moby-dick

struct CorpusShards {
  std::string train, val;  // shard paths
  int64_t train_tokens, val_tokens;
};
// Tokenises the default corpus into data_dir()/shards/moby-dick-<tokenizer>-{train,val}.bin,
// once per tokenizer name (later calls read the cached shards), and returns their paths.
CorpusShards prepare_default_corpus(const Tokenizer& tok, bool verbose);

}  // namespace data
