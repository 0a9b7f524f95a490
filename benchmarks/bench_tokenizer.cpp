// Single-thread encoding throughput of the tokenizers on the default corpus, as a table:
//   bench_tokenizer [repeats]     (needs scripts/fetch-data; adds SOTU when fetched with --sotu)
// Each row encodes the same bytes `repeats` times (default 5) and reports the fastest run, in
// MB/s of input text (1 MB = 1e6 bytes). "whole file" is one encode_ordinary() call; "per chapter"
// is one call per document, so the pre-token cache starts empty for every chapter.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/paths.h"
#include "data/data_dir.h"
#include "data/tokenizer.h"

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Input {
  std::string name;
  std::vector<std::string> documents;
};

void bench(const data::Tokenizer& tok, const Input& input, int repeats) {
  size_t bytes = 0, tokens = 0;
  for (const auto& d : input.documents) bytes += d.size();
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    tokens = 0;
    for (const auto& d : input.documents) tokens += tok.encode_ordinary(d).size();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  fmt::print("{:<9} {:<26} {:>9.2f} {:>10} {:>8.4f} {:>8.1f}\n", tok.name(), input.name, bytes / 1e6, tokens, best,
             bytes / 1e6 / best);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    std::string dir = data::data_dir();
    std::vector<Input> inputs = {{"moby-dick (whole file)", {read_text(dir + "/moby-dick/data.txt")}},
                                 {"moby-dick (per chapter)", {}}};
    for (const auto& f : data::expand_path(dir + "/moby-dick", {".txt"})) {
      if (f.find("/data.txt") == std::string::npos) inputs[1].documents.push_back(read_text(f));
    }
    if (std::filesystem::exists(dir + "/sotu")) {
      Input sotu{"sotu (whole, concatenated)", {""}};
      for (const auto& f : data::expand_path(dir + "/sotu", {".txt"})) sotu.documents[0] += read_text(f);
      inputs.push_back(std::move(sotu));
    }
    fmt::print("single-thread encode_ordinary, best of {}\n", repeats);
    fmt::print("{:<9} {:<26} {:>9} {:>10} {:>8} {:>8}\n", "tokenizer", "input", "MB", "tokens", "seconds", "MB/s");
    for (const char* name : {"p50k", "bytes"}) {
      auto tok = data::load_tokenizer(name);
      for (const auto& input : inputs) bench(*tok, input, repeats);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_tokenizer: {}\n", e.what());
    return 1;
  }
}
