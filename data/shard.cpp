// write_shard / read_shard: the header above, ids narrowed to uint16 when they all fit.
#include "data/shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

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

using File = std::unique_ptr<FILE, decltype(&std::fclose)>;

}  // namespace

void write_shard(const std::string& path, const std::string& tokenizer, const std::vector<uint32_t>& tokens) {
  Header h{};
  if (tokenizer.empty() || tokenizer.size() >= sizeof h.tokenizer)
    throw std::runtime_error(fmt::format("{}: tokenizer name '{}' must have 1 to 15 characters", path, tokenizer));
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  uint32_t largest = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  h.width = largest < 65536 ? 2 : 4;
  std::memcpy(h.tokenizer, tokenizer.data(), tokenizer.size());
  h.count = tokens.size();

  engine::write_file_atomic(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    if (h.width == 4) {
      out.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(tokens.size() * 4));
      return;
    }
    std::vector<uint16_t> chunk;
    for (size_t i = 0; i < tokens.size(); i += chunk.size()) {
      chunk.assign(tokens.begin() + long(i), tokens.begin() + long(std::min(tokens.size(), i + (1 << 20))));
      out.write(reinterpret_cast<const char*>(chunk.data()), std::streamsize(chunk.size() * 2));
    }
  });
}

Shard read_shard(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw std::runtime_error("cannot open shard file " + path);
  std::fseek(f.get(), 0, SEEK_END);
  uint64_t size = std::ftell(f.get());
  std::fseek(f.get(), 0, SEEK_SET);
  Header h{};
  if (size < sizeof h || std::fread(&h, sizeof h, 1, f.get()) != 1)
    throw std::runtime_error(fmt::format("{}: truncated shard ({} bytes, shorter than the {}-byte header)", path, size, sizeof h));
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    throw std::runtime_error(path + ": wrong magic number (not an avey token shard)");
  if (h.version != kVersion)
    throw std::runtime_error(fmt::format("{}: shard version {} is not supported (expected {})", path, h.version, kVersion));
  if ((h.width != 2 && h.width != 4) || h.tokenizer[sizeof h.tokenizer - 1] != '\0')
    throw std::runtime_error(path + ": corrupt shard header");
  uint64_t body = size - sizeof h;
  if (h.count > body / h.width || body != h.count * h.width)
    throw std::runtime_error(fmt::format("{}: {} shard (header says {} ids of {} bytes; the file has {} bytes after the header)",
                                         path, h.count > body / h.width ? "truncated" : "oversized", h.count, h.width, body));
  Shard shard{h.tokenizer, std::vector<uint32_t>(h.count)};
  bool ok = true;
  if (h.width == 4) {
    ok = std::fread(shard.tokens.data(), 4, h.count, f.get()) == h.count;
  } else {
    std::vector<uint16_t> narrow(h.count);
    ok = std::fread(narrow.data(), 2, h.count, f.get()) == h.count;
    std::copy(narrow.begin(), narrow.end(), shard.tokens.begin());
  }
  if (!ok) throw std::runtime_error("cannot read shard file " + path);
  return shard;
}

}  // namespace data
