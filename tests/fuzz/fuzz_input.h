// What every fuzz target shares: the input as text, or as a file for the parsers that read one
// by path. A parser may reject its input (any std::exception: one clear error); a crash, a
// sanitizer report or any other exception is a bug.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {

inline std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

// The input written to one file of this process (the same path every call, removed at exit),
// named with `suffix`.
inline std::string file(const uint8_t* data, size_t size, const std::string& suffix) {
  struct Temporary {
    std::string path;
    ~Temporary() { std::filesystem::remove(path); }
  };
  static const Temporary tmp{
      (std::filesystem::temp_directory_path() / ("avey-fuzz-" + std::to_string(::getpid()) + suffix)).string()};
  std::ofstream(tmp.path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return tmp.path;
}

// Runs a parser on the input: a rejected input is fine.
template <class F>
int accept_errors(F&& parse) {
  try {
    parse();
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace fuzz
