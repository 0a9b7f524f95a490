#include "cli/run_folder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/json_fields.h"
#include "engine/atomic_file.h"

namespace fs = std::filesystem;

RunFolder::RunFolder(const std::string& dir) : dir_(dir) {
  fs::create_directories(dir_);
  const std::string path = dir_ + "/.lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw std::runtime_error(path + ": cannot open the run's lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder;
    std::getline(std::ifstream(path), holder);
    ::close(lock_fd_);
    throw UsageError(fmt::format("avey train: {} is in use by another avey train (pid {}); wait for it to finish or "
                                 "choose another --out",
                                 dir_, holder.empty() ? "?" : holder));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size()))
    std::fprintf(stderr, "avey train: warning: could not write the process id into %s\n", path.c_str());
}

RunFolder::~RunFolder() { ::close(lock_fd_); }  // closing the descriptor releases the lock

bool RunFolder::has_run() const { return fs::exists(dir_ + "/run.json"); }

nlohmann::json RunFolder::read_run() const { return read_json_object(dir_ + "/run.json"); }

void RunFolder::write_run(const nlohmann::json& run) const { engine::write_file_atomic(dir_ + "/run.json", run.dump(2) + "\n"); }

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const std::string pointer = run_dir + "/latest";
  if (!fs::exists(pointer)) return std::nullopt;
  std::string name;
  std::getline(std::ifstream(pointer), name);
  if (!step_of_folder(name) || !fs::is_directory(run_dir + "/" + name))
    throw std::runtime_error(pointer + ": names '" + name + "', which is not a checkpoint folder of the run");
  return run_dir + "/" + name;
}

std::optional<std::string> RunFolder::latest() const { return latest_checkpoint(dir_); }

void RunFolder::set_pointer(const std::string& pointer, const std::string& step_folder) const {
  engine::write_file_atomic(dir_ + "/" + pointer, step_folder + "\n");
}

void RunFolder::remove_leftovers() const {
  const std::optional<std::string> latest = this->latest();
  const int64_t newest = latest ? *step_of_folder(fs::path(*latest).filename().string()) : -1;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    const std::optional<int64_t> step = step_of_folder(name);
    // a temporary file or folder (engine/atomic_file.h, save_checkpoint): NAME.tmp.PID
    const size_t tmp = name.rfind(".tmp.");
    const bool unfinished = tmp != std::string::npos && tmp + 5 < name.size() &&
                            name.find_first_not_of("0123456789", tmp + 5) == std::string::npos;
    if (unfinished || (step && *step > newest && entry.is_directory())) fs::remove_all(entry.path());
  }
}

void RunFolder::prune(int64_t keep_last, std::optional<int64_t> keep_step) const {
  if (keep_last <= 0) return;
  std::vector<int64_t> steps;
  for (const auto& entry : fs::directory_iterator(dir_))
    if (auto step = step_of_folder(entry.path().filename().string()); step && entry.is_directory()) steps.push_back(*step);
  std::sort(steps.rbegin(), steps.rend());
  for (size_t i = size_t(keep_last); i < steps.size(); ++i)
    if (steps[i] != keep_step) fs::remove_all(dir_ + "/" + step_folder_name(steps[i]));
}

void RunFolder::cut_logs(int64_t step) const {
  // metrics.jsonl, grad_stats.jsonl: the lines of steps up to `step` (a line torn by a kill is dropped too)
  for (const char* log : {"/metrics.jsonl", "/grad_stats.jsonl"}) {
    std::ifstream in(dir_ + log);
    if (!in) continue;
    std::string kept, line;
    while (std::getline(in, line)) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step)
        kept += line + "\n";
    }
    engine::write_file_atomic(dir_ + log, kept);
  }
  // samples.txt: the blocks headed "=== step N ===", in step order, up to `step`
  if (std::ifstream in(dir_ + "/samples.txt"); in) {
    std::string kept, line;
    long long n = 0;
    while (std::getline(in, line) && !(std::sscanf(line.c_str(), "=== step %lld ===", &n) == 1 && n > step))
      kept += line + "\n";
    engine::write_file_atomic(dir_ + "/samples.txt", kept);
  }
}

void RunFolder::sync_logs() const {
  for (const char* log : {"/metrics.jsonl", "/grad_stats.jsonl", "/samples.txt"})
    if (fs::exists(dir_ + log)) engine::sync_file(dir_ + log);
}
