// Token shards: a tokenised corpus on disk, read back in one go.
//
// Layout (little-endian), 40-byte header then the ids:
//   offset  0  char[8]   magic "AVEYTOK\0"
//   offset  8  uint32    version (1)
//   offset 12  uint32    bytes per id: 2 (uint16, when every id < 65536) or 4 (uint32)
//   offset 16  char[16]  tokenizer name, NUL-padded ("p50k", "bytes", ...)
//   offset 32  uint64    number of ids
//   offset 40  ids
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace data {

struct Shard {
  std::string tokenizer;
  std::vector<uint32_t> tokens;
};

// Writes to a temporary file next to path, then renames it over path (readers never see half a shard).
void write_shard(const std::string& path, const std::string& tokenizer, const std::vector<uint32_t>& tokens);
// Throws one clear line for a missing file, wrong magic, unknown version, or truncated shard.
Shard read_shard(const std::string& path);

}  // namespace data
