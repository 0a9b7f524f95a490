// Running the built `avey` binary from tests as a user would: a scratch folder per test, the
// command's exit code, stdout and stderr, a tiny model with a small corpus that trains a step in
// milliseconds, the run folder's files, and runs in the background (to kill them).
#pragma once
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cli_testing {

namespace fs = std::filesystem;

struct Result {
  int code;  // the exit code; 128 + N when killed by signal N
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

inline std::string avey_binary() { return std::string(AVEY_BINARY_DIR) + "/bin/avey"; }

inline int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

// Runs `avey ARGS` in dir (stdout and stderr kept there); `shell` goes before the command
// (e.g. "ulimit -f 40;").
inline Result avey_shell(const fs::path& dir, const std::string& shell, const std::string& args) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = "cd " + dir.string() + " && " + shell + " OMP_NUM_THREADS=1 exec " + avey_binary() + " " +
                          args + " >" + out.string() + " 2>" + err.string();
  return {exit_code(std::system(cmd.c_str())), slurp(out), slurp(err)};
}

inline Result avey(const fs::path& dir, const std::string& args) { return avey_shell(dir, "", args); }

// Lines of stderr that are the command's messages (progress lines, e.g. "tokenizing: ...", aside).
inline int lines(const std::string& s) {
  int n = 0;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) n += line.rfind("avey", 0) == 0;
  return n;
}

// A tiny model and a small corpus: tiny.json and text.txt in dir.
inline fs::path setup_run_inputs(const fs::path& dir) {
  std::ofstream(dir / "tiny.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  std::ofstream text(dir / "text.txt");
  for (int i = 0; i < 200; ++i) text << "Call me Ishmael. Some years ago, never mind how long precisely. " << i << "\n";
  return dir;
}

// `avey train` on those inputs into dir/out.
inline std::string train_flags(const fs::path& dir, const std::string& out, int steps = 6) {
  return "train --config " + (dir / "tiny.json").string() + " --tokenizer bytes --data " + (dir / "text.txt").string() +
         " --device cpu --batch-size 2 --seq-len 32 --max-steps " + std::to_string(steps) +
         " --eval-every 3 --eval-batches 1 --sample-every 0 --save-every 0 --out " + (dir / out).string();
}

// The "loss" fields of metrics.jsonl, as written (every digit of the doubles).
inline std::vector<std::string> losses(const fs::path& metrics) {
  std::vector<std::string> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find("\"loss\":"), b = line.find(',', a);
    out.push_back(line.substr(a, b - a));
  }
  return out;
}

// The steps of metrics.jsonl that carry a validation loss.
inline std::vector<int64_t> evaluated_steps(const fs::path& metrics) {
  std::vector<int64_t> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"val_loss\"") != std::string::npos) out.push_back(std::stoll(line.substr(line.find("\"step\":") + 7)));
  return out;
}

// The step folder a run's `latest` names.
inline fs::path latest(const fs::path& run) {
  std::string name;
  std::getline(std::ifstream(run / "latest"), name);
  return run / name;
}

// Waits (up to 60 s) until the run has logged a step.
inline void wait_for_first_step(const fs::path& run) {
  for (int i = 0; i < 6000 && !(fs::exists(run / "metrics.jsonl") && fs::file_size(run / "metrics.jsonl") > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// The two runs ended in the same place: the same losses, validation steps, weights and moments.
inline void check_same_run(const fs::path& a, const fs::path& b) {
  CHECK(losses(a / "metrics.jsonl") == losses(b / "metrics.jsonl"));
  CHECK(evaluated_steps(a / "metrics.jsonl") == evaluated_steps(b / "metrics.jsonl"));
  CHECK(latest(a).filename() == latest(b).filename());
  CHECK(slurp(latest(a) / "model.safetensors") == slurp(latest(b) / "model.safetensors"));
  CHECK(slurp(latest(a) / "optimizer.bin") == slurp(latest(b) / "optimizer.bin"));
}

// Starts `avey ARGS` in dir without waiting (output to dir/bg.txt); returns its process id.
inline pid_t start_avey(const fs::path& dir, const std::string& args) {
  const std::string cmd = "cd " + dir.string() + " && OMP_NUM_THREADS=1 exec " + avey_binary() + " " + args + " >>" +
                          (dir / "bg.txt").string() + " 2>&1";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  REQUIRE(pid > 0);
  return pid;
}

inline int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return exit_code(status);
}

// Starts `avey ARGS` (a training into dir/stopped), sends it SIGTERM once it logged a step, and
// checks that it stopped saying so; returns its output.
inline std::string stop_with_sigterm(const fs::path& dir, const std::string& args) {
  pid_t pid = start_avey(dir, args);
  wait_for_first_step(dir / "stopped");
  ::kill(pid, SIGTERM);
  REQUIRE(wait_for(pid) == 128 + SIGTERM);
  const std::string log = slurp(dir / "bg.txt");
  REQUIRE_MESSAGE(log.find("stopped by SIGTERM after step ") != std::string::npos, log);
  return log;
}

// Runs `avey RESUME` (continuing dir/stopped) and `avey WHOLE` (the same run uninterrupted, into
// dir/whole): both must end in the same place.
inline void check_resumes_as_whole(const fs::path& dir, const std::string& resume, const std::string& whole) {
  Result rest = avey(dir, resume);
  REQUIRE_MESSAGE(rest.code == 0, rest.err);
  REQUIRE(avey(dir, whole).code == 0);
  check_same_run(dir / "whole", dir / "stopped");
}

}  // namespace cli_testing
