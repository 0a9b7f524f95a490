// Token shards: a tokenised corpus on disk. Two formats are read; the engine writes the first.
//
// avey shard (little-endian), 40-byte header then the ids:
//   offset  0  char[8]   magic "AVEYTOK\0"
//   offset  8  uint32    version (1)
//   offset 12  uint32    bytes per id: 2 (uint16, when every id < 65536) or 4 (uint32)
//   offset 16  char[16]  tokenizer name, NUL-padded ("p50k", "bytes", ...)
//   offset 32  uint64    number of ids
//   offset 40  ids
//
// llm.c shard (karpathy/llm.c's dev/data/*.py, e.g. fineweb_train_000001.bin), read as tokenizer
// "r50k" (GPT-2's ids):
//   offset  0  int32[256] header: [0] magic 20240520, [1] version 1, [2] number of ids, rest 0
//   offset 1024  uint16 ids
// llm.c's other files (LLaMA-3 shards, magic 20240801; HellaSwag/MMLU examples, 20240522) are
// refused with a line that says what they are.
//
// Shards are read through a memory mapping (token_stream.h), never copied whole unless asked.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace data {

// Where the ids of a shard file are, from its header, checked against the file's size.
struct ShardLayout {
  std::string tokenizer;
  uint32_t width = 2;   // bytes per id
  uint64_t count = 0;   // ids
  uint64_t offset = 0;  // bytes before the first id
};
// bytes/size: the whole file. Throws one clear line for a truncated or oversized file, a wrong
// magic number, an unknown version or a corrupt header.
ShardLayout parse_shard(const std::string& path, const unsigned char* bytes, uint64_t size);

// Bytes per id in a shard of a tokenizer's ids: 2 when they all fit in uint16, else 4.
inline uint32_t id_width(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

// n ids of `width` bytes each (little-endian) widened to uint32.
void widen_ids(const unsigned char* ids, uint32_t width, uint64_t n, uint32_t* out);

// Writes an avey shard atomically (a temporary file renamed over path: readers never see half a
// shard) with ids pulled from `source` (fills up to n ids, returns how many; 0: no more) until
// it runs dry or max_ids are written. Returns the number written.
using IdSource = std::function<size_t(uint32_t* out, size_t n)>;
uint64_t write_shard(const std::string& path, const std::string& tokenizer, uint32_t width, const IdSource& source,
                     uint64_t max_ids = UINT64_MAX);

struct Shard {
  std::string tokenizer;
  std::vector<uint32_t> tokens;
};
// Ids in memory: 2 bytes each when all are below 65536, else 4.
void write_shard(const std::string& path, const std::string& tokenizer, const std::vector<uint32_t>& tokens);
Shard read_shard(const std::string& path);  // the whole shard copied into memory (either format)

}  // namespace data
