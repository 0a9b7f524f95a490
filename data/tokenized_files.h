// Text files as one stream of token ids, tokenised on every core. Each document is preceded by
// end-of-text and encoded with encode_ordinary() (so text cannot inject control tokens). A batch
// of pieces (documents.h: ~32 MB of text) is read in order, its pieces are encoded in parallel
// (OpenMP), and the ids are handed out in order: the stream is the same for any number of
// threads, and only one batch is in memory at a time (its text, then its ids).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/documents.h"
#include "data/progress.h"
#include "data/tokenizer.h"

namespace data {

struct TokenizeOptions {
  int threads = 0;                            // 0: OpenMP's choice (every core, or OMP_NUM_THREADS)
  size_t max_piece = size_t(1) << 20;         // bytes of text one task encodes (documents.h)
  size_t batch_bytes = size_t(32) << 20;      // bytes of text read per batch
  std::string progress;                       // a label for the progress line on stderr; "": silent
};

class TokenizedFiles {
 public:
  TokenizedFiles(const Tokenizer& tok, std::vector<std::string> files, TokenizeOptions options = {});

  size_t read(uint32_t* out, size_t max);  // the next ids, up to max; 0 after the last
  bool at_end();                           // no ids left (reads the next batch to know)
  uint64_t tokens() const { return tokens_; }  // handed out so far
  const DocumentReader& reader() const { return reader_; }

 private:
  void next_batch();

  const Tokenizer& tok_;
  DocumentReader reader_;
  TokenizeOptions options_;
  Progress progress_;
  std::vector<std::vector<uint32_t>> parts_;  // the batch's ids, a part per piece
  size_t part_ = 0, pos_ = 0;                 // the next id to hand out: parts_[part_][pos_]
  uint64_t tokens_ = 0, produced_ = 0;
  bool finished_ = false;
};

// Every id of the files, in memory (small corpora, tests). With a label, shows progress.
std::vector<uint32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& files,
                                     const std::string& progress_label = "");

}  // namespace data
