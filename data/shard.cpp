// Shard headers (both formats) and writing avey shards.
#include "data/shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "data/mapped_file.h"
#include "engine/atomic_file.h"

namespace data {

static_assert(std::endian::native == std::endian::little, "shards are little-endian");

namespace {

constexpr char kMagic[8] = {'A', 'V', 'E', 'Y', 'T', 'O', 'K', '\0'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t width;
  char tokenizer[16];
  uint64_t count;
};
static_assert(sizeof(Header) == 40);

constexpr int32_t kLlmcMagic = 20240520, kLlmcLlama3Magic = 20240801, kLlmcEvalMagic = 20240522;
constexpr uint64_t kLlmcHeader = 256 * 4;

// The ids after the header fill the file exactly.
void check_body(const std::string& path, uint64_t size, const ShardLayout& s) {
  uint64_t body = size - s.offset;
  if (s.count > body / s.width || body != s.count * s.width)
    throw std::runtime_error(fmt::format("{}: {} shard (header says {} ids of {} bytes; the file has {} bytes after the header)",
                                         path, s.count > body / s.width ? "truncated" : "oversized", s.count, s.width, body));
}

ShardLayout parse_llmc(const std::string& path, const unsigned char* bytes, uint64_t size) {
  if (size < kLlmcHeader)
    throw std::runtime_error(fmt::format("{}: truncated llm.c shard ({} bytes, shorter than the {}-byte header)", path, size, kLlmcHeader));
  int32_t h[3];
  std::memcpy(h, bytes, sizeof h);
  if (h[1] != 1)
    throw std::runtime_error(fmt::format("{}: llm.c shard version {} is not supported (expected 1: GPT-2 uint16 ids)", path, h[1]));
  if (h[2] < 0) throw std::runtime_error(path + ": corrupt llm.c shard header (negative token count)");
  ShardLayout s{"r50k", 2, uint64_t(h[2]), kLlmcHeader};
  check_body(path, size, s);
  return s;
}

}  // namespace

ShardLayout parse_shard(const std::string& path, const unsigned char* bytes, uint64_t size) {
  int32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, bytes, 4);
  if (magic == kLlmcMagic) return parse_llmc(path, bytes, size);
  if (magic == kLlmcLlama3Magic)
    throw std::runtime_error(path + ": an llm.c LLaMA-3 shard (uint32 ids of a tokenizer this engine does not have; "
                                    "llm.c's GPT-2 shards, magic 20240520, are read)");
  if (magic == kLlmcEvalMagic)
    throw std::runtime_error(path + ": an llm.c evaluation file (HellaSwag/MMLU examples), not a token shard");
  Header h{};
  if (size < sizeof h)
    throw std::runtime_error(fmt::format("{}: truncated shard ({} bytes, shorter than the {}-byte header)", path, size, sizeof h));
  std::memcpy(&h, bytes, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    throw std::runtime_error(path + ": wrong magic number (neither an avey token shard nor an llm.c GPT-2 shard)");
  if (h.version != kVersion)
    throw std::runtime_error(fmt::format("{}: shard version {} is not supported (expected {})", path, h.version, kVersion));
  if ((h.width != 2 && h.width != 4) || h.tokenizer[sizeof h.tokenizer - 1] != '\0')
    throw std::runtime_error(path + ": corrupt shard header");
  ShardLayout s{h.tokenizer, h.width, h.count, sizeof h};
  check_body(path, size, s);
  return s;
}

void widen_ids(const unsigned char* ids, uint32_t width, uint64_t n, uint32_t* out) {
  if (n == 0) return;  // out may be an empty vector's null data()
  if (width == 4) {
    std::memcpy(out, ids, n * 4);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, ids + 2 * i, 2);
    out[i] = v;
  }
}

uint64_t write_shard(const std::string& path, const std::string& tokenizer, uint32_t width, const IdSource& source,
                     uint64_t max_ids) {
  Header h{};
  if (tokenizer.empty() || tokenizer.size() >= sizeof h.tokenizer)
    throw std::runtime_error(fmt::format("{}: tokenizer name '{}' must have 1 to 15 characters", path, tokenizer));
  if (width != 2 && width != 4) throw std::runtime_error(fmt::format("{}: ids must be 2 or 4 bytes, not {}", path, width));
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.width = width;
  std::memcpy(h.tokenizer, tokenizer.data(), tokenizer.size());

  engine::write_file_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(&h), sizeof h);  // the count is written at the end
    std::vector<uint32_t> chunk(size_t(1) << 20);
    std::vector<uint16_t> narrow;
    while (h.count < max_ids) {
      const size_t n = source(chunk.data(), size_t(std::min<uint64_t>(chunk.size(), max_ids - h.count)));
      if (n == 0) break;
      if (width == 4) {
        out.write(reinterpret_cast<const char*>(chunk.data()), std::streamsize(n * 4));
      } else {
        narrow.resize(n);
        for (size_t i = 0; i < n; ++i) {
          if (chunk[i] > 0xffff)
            throw std::runtime_error(fmt::format("{}: id {} does not fit in 2 bytes", path, chunk[i]));
          narrow[i] = static_cast<uint16_t>(chunk[i]);
        }
        out.write(reinterpret_cast<const char*>(narrow.data()), std::streamsize(n * 2));
      }
      h.count += n;
    }
    out.seekp(0);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
  });
  return h.count;
}

void write_shard(const std::string& path, const std::string& tokenizer, const std::vector<uint32_t>& tokens) {
  const uint32_t largest = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  size_t pos = 0;
  write_shard(path, tokenizer, largest < 65536 ? 2 : 4, [&](uint32_t* out, size_t n) {
    n = std::min(n, tokens.size() - pos);
    std::copy_n(tokens.begin() + long(pos), n, out);
    pos += n;
    return n;
  });
}

Shard read_shard(const std::string& path) {
  MappedFile file(path);
  ShardLayout layout = parse_shard(path, file.data(), file.size());
  Shard shard{layout.tokenizer, std::vector<uint32_t>(layout.count)};
  widen_ids(file.data() + layout.offset, layout.width, layout.count, shard.tokens.data());
  return shard;
}

}  // namespace data
