// Running the built `avey` binary from tests: a scratch folder per test, the command's exit
// code, stdout and stderr, and a tiny model with a small corpus that trains a step in milliseconds.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cli_testing {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh scratch folder per test case.
inline fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("avey-cli-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline Result avey(const fs::path& dir, const std::string& args) {
  const std::string bin = std::string(AVEY_BINARY_DIR) + "/bin/avey";
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = "OMP_NUM_THREADS=1 " + bin + " " + args + " >" + out.string() + " 2>" + err.string();
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

// Lines of stderr that are the command's messages (progress lines, e.g. "tokenizing: ...", aside).
inline int lines(const std::string& s) {
  int n = 0;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) n += line.rfind("avey", 0) == 0;
  return n;
}

// A tiny model and a small corpus: trains a step in milliseconds.
inline fs::path setup_run_inputs(const fs::path& dir) {
  std::ofstream(dir / "tiny.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  std::ofstream text(dir / "text.txt");
  for (int i = 0; i < 200; ++i) text << "Call me Ishmael. Some years ago, never mind how long precisely. " << i << "\n";
  return dir;
}

inline std::string train_flags(const fs::path& dir, const std::string& out) {
  return "train --config " + (dir / "tiny.json").string() + " --tokenizer bytes --data " + (dir / "text.txt").string() +
         " --device cpu --batch-size 2 --seq-len 32 --max-steps 6 --eval-every 3 --eval-batches 1 --sample-every 0 "
         "--save-every 0 --out " + (dir / out).string();
}

}  // namespace cli_testing
