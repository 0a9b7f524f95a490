// Where the engine keeps its data files (tokenizer ranks, corpora, token shards):
// $AVEY_DATA_DIR if set, else $HOME/.cache/avey. scripts/fetch-data fills it by the same rule;
// data/README.md describes the layout.
#pragma once
#include <string>

namespace data {

std::string data_dir();

}  // namespace data
