// The data library's whole interface in one include: tokenizers, shards, the loader, corpora.
#pragma once
#include "data/corpus.h"
#include "data/data_dir.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"
