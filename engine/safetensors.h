// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data. Supported dtypes: F32, F64, BF16, I32.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine {

// Writes atomically: a temporary file beside `path`, then a rename. Tensors may live on any device.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor onto the CPU. A missing, corrupt or truncated file is one std::runtime_error
// whose message names the file. metadata (optional) receives the "__metadata__" strings.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

}  // namespace engine
