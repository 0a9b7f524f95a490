// What a run reads besides its config: the device and precision flags, the tokenizer, and the
// training and validation token streams (a named corpus, text, or shards: data/splits.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "avey/config.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "engine/dtype.h"

engine::Device resolve_device(const std::string& flag);  // cpu | cuda | auto
engine::DType resolve_precision(const std::string& flag, engine::Device device);  // fp32 | bf16 | auto

// The tokenizer by name, checked against the model's vocabulary (one clear error if it does not fit).
std::unique_ptr<data::Tokenizer> tokenizer_for(const std::string& name, const avey::Config& cfg);

struct RunData {
  std::unique_ptr<data::Tokenizer> tokenizer;
  data::TokenStream train, val;  // shards stay on disk, memory-mapped
};
// path: what data::open_data takes ("" is the default corpus, Moby Dick split by chapter).
RunData load_run_data(const std::string& path, const std::string& tokenizer, const avey::Config& cfg);
