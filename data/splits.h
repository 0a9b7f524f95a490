// The training and validation streams of a data path (the --data of avey train and avey eval):
//
//   "" or a corpus name   a named corpus (corpus.h; "" is moby-dick): its cached train/val shards
//   shards                a *.bin file, a folder holding *.bin files, or a glob matching them:
//                         memory-mapped, never loaded whole. When some but not all of the files
//                         have the word "val" or "validation" in their name (llm.c's
//                         fineweb_val_000000.bin), those are the validation set; otherwise it is
//                         the last 10% of the ids. Their tokenizer must be the run's.
//   text                  a text or JSON-lines file (documents.h), a folder of *.txt/*.jsonl
//                         files, or a glob: tokenised into memory on every core; the last 10% of
//                         the ids validate. (Prepare large text with `avey prepare` first.)
//
// A corpus name wins over a folder of that name: write ./research for the folder.
#pragma once
#include <string>

#include "data/token_stream.h"
#include "data/tokenizer.h"

namespace data {

struct DataSplit {
  TokenStream train, val;
};

// Throws one line when the data cannot be read, mixes shards and text, holds another
// tokenizer's ids, or leaves fewer than 2 ids (one prediction) to validate on.
DataSplit open_data(const std::string& path, const Tokenizer& tok, bool verbose);

bool is_validation_name(const std::string& path);  // a word of the file name is "val" or "validation"

}  // namespace data
