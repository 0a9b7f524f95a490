// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data. Written: F32, F64, BF16, I32 (the engine's dtypes). Read: those
// and F16, which is converted to F32 on load (PyTorch checkpoints saved in half precision).
//
// A model too large for one file is saved by PyTorch's save_pretrained as shards plus an index,
// model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor name: shard file name}}.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/checksum.h"
#include "engine/tensor.h"

namespace engine {

// Writes atomically and durably (engine/atomic_file.h). Tensors may live on any device. Returns
// the file's digest.
FileDigest save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                            const std::map<std::string, std::string>& metadata = {});

// Reads every tensor onto the CPU. A missing, corrupt or truncated file is one std::runtime_error
// whose message names the file. metadata (optional) receives the "__metadata__" strings.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);
// The same from the file's bytes; `what` names the source in errors.
std::map<std::string, Tensor> parse_safetensors(const std::string& bytes, const std::string& what,
                                                std::map<std::string, std::string>* metadata = nullptr);

// A shard index's weight map, checked: every shard is a plain file name (no folder part).
std::map<std::string, std::string> parse_safetensors_index(const std::string& json_text, const std::string& what);
// Every tensor of an index and its shards (which lie beside the index). Each shard must hold
// exactly the tensors the index maps to it.
std::map<std::string, Tensor> load_safetensors_index(const std::string& index_path);

}  // namespace engine
