#include "engine/checksum.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace engine {

FileDigest digest_file(const std::string& path) {
  std::unique_ptr<FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw std::runtime_error(path + ": cannot open the file (" + std::strerror(errno) + ")");
  std::vector<char> piece(kDigestPiece);
  Checksum sum{kFileDigestStart};
  uint64_t bytes = 0;
  for (size_t got; (got = std::fread(piece.data(), 1, piece.size(), f.get())) > 0;) {
    sum.update(piece.data(), got);
    bytes += got;
  }
  if (std::ferror(f.get())) throw std::runtime_error(path + ": read failed");
  return {bytes, sum.h};
}

std::string to_hex(uint64_t x) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(x));
  return s;
}

bool from_hex(const std::string& s, uint64_t& x) {
  if (s.size() != 16) return false;
  x = 0;
  for (char c : s) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    x = x << 4 | uint64_t(v);
  }
  return true;
}

}  // namespace engine
