// A training run's folder (avey train --out DIR):
//   run.json          the run's settings (its flags, paths made absolute), its data's
//                     fingerprint and its processes ("world_size", docs/distributed.md):
//                     --resume reads them, from any working directory
//   config.json       the model's config (engine keys; what --config DIR/config.json reads back)
//   step-00000120/    a checkpoint (checkpoint.h); the newest --keep-last K and the best are kept
//   latest            the name of the newest checkpoint folder
//   best              the name of the checkpoint with the lowest validation loss
//   metrics.jsonl     one JSON object per step; loss.svg its plot; samples.txt
//   grad_stats.jsonl  with --grad-stats N: norms per tensor and block every N steps (grad_stats.h)
//   .lock             held (flock) by the avey train writing the folder; the system releases it
//                     when that process ends, however it ends
//
// Crash safety rests on one order: a checkpoint folder is whole and on the disk (and the logs
// synced) before `latest` names it, and `latest` is replaced in one rename. A kill at any moment
// leaves `latest` naming a whole checkpoint (or no checkpoint yet: --resume then starts from step
// 0 with the settings in run.json). --resume removes what a crash left behind (temporary files
// and folders, step folders newer than `latest`) and cuts metrics.jsonl and samples.txt back to its step.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

class RunFolder {
 public:
  // Creates the folder if needed and takes its lock; one clear error when another process holds it.
  explicit RunFolder(const std::string& dir);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }
  bool has_run() const;  // run.json is there: the folder holds a run (maybe with no checkpoint yet)
  nlohmann::json read_run() const;
  void write_run(const nlohmann::json& run) const;

  std::optional<std::string> latest() const;  // the checkpoint folder `latest` names
  // Points `pointer` ("latest" or "best") at a step folder of this run.
  void set_pointer(const std::string& pointer, const std::string& step_folder) const;
  void remove_leftovers() const;  // temporary files and folders, step folders newer than `latest`
  // Removes checkpoint folders beyond the newest keep_last (0: keep all), except `keep_step`'s.
  void prune(int64_t keep_last, std::optional<int64_t> keep_step) const;
  void cut_logs(int64_t step) const;  // metrics.jsonl, grad_stats.jsonl and samples.txt back to `step`
  void sync_logs() const;             // the same onto the disk

 private:
  std::string dir_;
  int lock_fd_ = -1;
};

// The newest checkpoint folder of a run folder (`latest`), or nullopt when it has none yet;
// throws when `latest` names no checkpoint folder.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
