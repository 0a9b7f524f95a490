// A fast 64-bit checksum (FNV-style over 8-byte words) for detecting corrupt files: the optimizer
// state's trailing checksum and the digests a checkpoint's train_state.json keeps of its files.
//
//   h0 = 14695981039346656037;  for each little-endian 8-byte word w:  h = (h ^ w) * 1099511628211
//   then, for each byte b of a last piece shorter than 8 bytes:        h = (h ^ b) * 1099511628211
//
// Every step is a bijection of h, so one changed word always changes the result. update() treats
// each call's tail bytes on their own: updates over pieces whose sizes are multiples of 8 give the
// checksum of their concatenation (file digests are computed over 1 MiB pieces for that reason).
// Not a cryptographic hash: it catches torn and damaged files, not tampering.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace engine {

struct Checksum {
  uint64_t h = 1469598103934665603ull;
  void update(const void* data, size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, b + i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
};

// The size and checksum of a file's whole content. The checksum starts from another value than
// h0: a file that ends with the Checksum of what precedes it (optimizer.bin does) would otherwise
// always digest to (h ^ h) * p = 0.
inline constexpr uint64_t kFileDigestStart = 0x9e3779b97f4a7c15ull;
struct FileDigest {
  uint64_t bytes = 0;
  uint64_t checksum = kFileDigestStart;
  bool operator==(const FileDigest&) const = default;
};

inline constexpr size_t kDigestPiece = size_t(1) << 20;  // the piece size file digests are computed over

// Reads the file in kDigestPiece pieces; throws std::runtime_error naming it when it cannot be read.
FileDigest digest_file(const std::string& path);

std::string to_hex(uint64_t x);                          // 16 lower-case hex digits
bool from_hex(const std::string& s, uint64_t& x);        // false unless exactly 16 hex digits

}  // namespace engine
