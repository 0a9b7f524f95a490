// The data library's whole interface in one include: tokenizers, text documents, shards, token
// streams, the loader, corpora, the train/validation splits of a data path, and fine-tuning tasks.
#pragma once
#include "data/corpus.h"
#include "data/data_dir.h"
#include "data/documents.h"
#include "data/finetune_tasks.h"
#include "data/loader.h"
#include "data/masking.h"
#include "data/paths.h"
#include "data/shard.h"
#include "data/splits.h"
#include "data/task_file.h"
#include "data/task_metrics.h"
#include "data/token_stream.h"
#include "data/tokenized_files.h"
#include "data/tokenizer.h"
