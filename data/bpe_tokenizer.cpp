// BpeTokenizer: reading the rank file, the rank hash table, and the two merge loops.
#include "data/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace data {

namespace {

constexpr int32_t kMaxRank = 1 << 24;            // larger ranks mean a corrupt file
constexpr size_t kLongPiece = 128;               // pieces at least this long merge with a heap
constexpr size_t kMaxCachedPieces = 1 << 20;     // the per-call cache restarts beyond this
constexpr int32_t kNoMerge = INT32_MAX;

uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
  for (; n >= 8; p += 8, n -= 8) {
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

struct BytesHash {
  size_t operator()(std::string_view s) const { return hash_bytes(s); }
};

// Standard base64 with '=' padding; false when s is not valid base64.
bool base64_decode(std::string_view s, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  out.clear();
  if (s.empty() || s.size() % 4 != 0) return false;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; ++k) {
      bool last = i + 4 == s.size();
      if (last && k >= 2 && s[i + k] == '=' && (k == 3 || s[i + 3] == '=')) {
        v[k] = 0;
        ++pad;
      } else if ((v[k] = value(s[i + k])) < 0) {
        return false;
      }
    }
    uint32_t bits = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
    out += static_cast<char>(bits >> 16);
    if (pad < 2) out += static_cast<char>(bits >> 8 & 0xff);
    if (pad < 1) out += static_cast<char>(bits & 0xff);
  }
  return true;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& path, std::string name, int32_t eot)
    : name_(std::move(name)), eot_(eot) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open tokenizer rank file " + path);
  std::stringstream whole;
  whole << file.rdbuf();
  const std::string text = whole.str();

  // Parse "base64 rank" lines into spans_ over bytes_.
  std::string token;
  size_t line_no = 0, count = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto bad = [&](const std::string& what) {
      return std::runtime_error(fmt::format("{} line {}: {}", path, line_no, what));
    };
    size_t space = line.find(' ');
    if (space == std::string_view::npos) throw bad("expected 'base64-bytes rank', got '" + std::string(line.substr(0, 40)) + "'");
    std::string_view b64 = line.substr(0, space), digits = line.substr(space + 1);
    if (!base64_decode(b64, token)) throw bad("invalid base64 '" + std::string(b64.substr(0, 40)) + "'");
    int32_t id = -1;
    auto [end_digits, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc() || end_digits != digits.data() + digits.size() || id < 0 || id >= kMaxRank)
      throw bad("rank '" + std::string(digits.substr(0, 20)) + "' is not an integer in 0.." + std::to_string(kMaxRank - 1));
    if (id == eot_) throw bad(fmt::format("rank {} is the end-of-text id", id));
    if (static_cast<size_t>(id) >= spans_.size()) spans_.resize(id + 1, {0, 0});
    if (spans_[id].second != 0) throw bad(fmt::format("rank {} appears twice", id));
    spans_[id] = {static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(token.size())};
    bytes_ += token;
    ++count;
  }
  if (count == 0) throw std::runtime_error(path + ": no ranks (empty rank file)");

  // The hash table, at most a quarter full.
  size_t capacity = 1;
  while (capacity < 4 * count) capacity *= 2;
  slots_.assign(capacity, {-1, 0});
  mask_ = capacity - 1;
  for (int32_t id = 0; id < static_cast<int32_t>(spans_.size()); ++id) {
    if (spans_[id].second == 0) continue;
    std::string_view key = bytes_of(id);
    if (int32_t other = rank(key); other >= 0)
      throw std::runtime_error(fmt::format("{}: ranks {} and {} have the same bytes", path, other, id));
    uint64_t h = hash_bytes(key);
    size_t i = h & mask_;
    while (slots_[i].first >= 0) i = (i + 1) & mask_;
    slots_[i] = {id, static_cast<uint32_t>(h >> 32)};
  }
  for (int b = 0; b < 256; ++b) {
    char c = static_cast<char>(b);
    if (rank(std::string_view(&c, 1)) < 0)
      throw std::runtime_error(fmt::format("{}: no token for byte 0x{:02x} (not a byte-level BPE rank file)", path, b));
  }
  vocab_size_ = std::max(static_cast<int32_t>(spans_.size()), eot_ + 1);
}

int32_t BpeTokenizer::rank(std::string_view s) const {
  uint64_t h = hash_bytes(s);
  uint32_t tag = static_cast<uint32_t>(h >> 32);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    auto [id, slot_tag] = slots_[i];
    if (id < 0) return -1;
    if (slot_tag == tag && bytes_of(id) == s) return id;
  }
}

std::vector<int32_t> BpeTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);
  // pre-token -> where its ids already are in `out` (offset, count)
  std::unordered_map<std::string_view, std::pair<size_t, size_t>, BytesHash> cache;
  pretokenizer_.split(text, [&](std::string_view piece) {
    if (int32_t id = rank(piece); id >= 0) {
      out.push_back(id);
      return;
    }
    if (auto it = cache.find(piece); it != cache.end()) {
      auto [offset, count] = it->second;
      out.reserve(out.size() + count);  // no reallocation while copying from out into out
      for (size_t k = 0; k < count; ++k) out.push_back(out[offset + k]);
      return;
    }
    size_t before = out.size();
    encode_piece(piece, out);
    if (cache.size() >= kMaxCachedPieces) cache.clear();
    cache.emplace(piece, std::pair{before, out.size() - before});
  });
  return out;
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() < kLongPiece) merge_by_scan(piece, out);
  else merge_by_heap(piece, out);
}

// tiktoken's loop: parts[i] holds the start of part i, its token, and the rank of part i joined
// with part i + 1; each step finds the lowest such rank, merges, and updates its two neighbours.
void BpeTokenizer::merge_by_scan(std::string_view piece, std::vector<int32_t>& out) const {
  struct Part {
    uint32_t start;
    int32_t id, merge;
  };
  Part parts[kLongPiece + 1];
  size_t count = piece.size();
  for (size_t i = 0; i <= count; ++i) parts[i].start = static_cast<uint32_t>(i);
  auto merge_rank = [&](size_t i) {
    if (i + 2 > count) return kNoMerge;
    int32_t r = rank(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
    return r < 0 ? kNoMerge : r;
  };
  for (size_t i = 0; i < count; ++i) {
    parts[i].id = rank(piece.substr(i, 1));
    parts[i].merge = merge_rank(i);
  }
  for (;;) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < count; ++i)
      if (parts[i].merge < parts[best].merge) best = i;
    if (count < 2 || parts[best].merge == kNoMerge) break;
    parts[best].id = parts[best].merge;
    std::memmove(&parts[best + 1], &parts[best + 2], (count - best - 1) * sizeof(Part));
    --count;
    parts[best].merge = merge_rank(best);
    if (best > 0) parts[best - 1].merge = merge_rank(best - 1);
  }
  for (size_t i = 0; i < count; ++i) out.push_back(parts[i].id);
}

// The same merges in O(n log n): parts form a linked list indexed by their start byte, and a
// min-heap holds (rank, start) of candidate merges; entries made stale by a merge are skipped
// by a per-part version number. Popping the least (rank, start) is tiktoken's leftmost-lowest.
void BpeTokenizer::merge_by_heap(std::string_view piece, std::vector<int32_t>& out) const {
  const uint32_t n = static_cast<uint32_t>(piece.size());
  std::vector<uint32_t> next(n), prev(n), version(n, 0);
  std::vector<int32_t> id(n);
  for (uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i - 1;  // wraps for part 0, which has no previous part
    id[i] = rank(piece.substr(i, 1));
  }
  struct Candidate {
    int32_t rank;
    uint32_t start, version;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : start > o.start; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](uint32_t i) {
    if (next[i] >= n) return;
    uint32_t end = next[next[i]] < n ? next[next[i]] : n;
    if (int32_t r = rank(piece.substr(i, end - i)); r >= 0) heap.push({r, i, version[i]});
  };
  for (uint32_t i = 0; i < n; ++i) push(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    uint32_t i = c.start;
    if (id[i] < 0 || c.version != version[i]) continue;
    uint32_t j = next[i];
    id[i] = c.rank;
    id[j] = -1;
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    ++version[i];
    push(i);
    if (i > 0) {
      ++version[prev[i]];
      push(prev[i]);
    }
  }
  for (uint32_t i = 0; i < n; i = next[i]) out.push_back(id[i]);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (id == eot_) text += kEndOfText;
    else if (id >= 0 && id < static_cast<int32_t>(spans_.size()) && spans_[id].second != 0) text += bytes_of(id);
    else throw std::runtime_error(fmt::format("{} tokenizer: token id {} is not in the vocabulary (0..{})", name_, id, vocab_size_ - 1));
  }
  return text;
}

}  // namespace data
