// The settings of a training run: avey train's flags as run.json keeps them (run_folder.h).
//
// Two groups: the flags that define what the run computes (model, data, batch, schedule, seed,
// ...) are fixed when the run starts; --resume reuses them and refuses a different value. The
// flags that only say what to report and keep (eval, sample, save, keep-last) are reused too, but
// may be given anew on --resume, which then keeps the new values. Paths are stored absolute, so
// --resume works from any working directory.
//
// A new run's value of each flag: the flag's default < the config file's key of the same name
// ('_' for '-': max_steps, seq_len, ...; avey/config.h training_keys) < the flag on the command
// line. A key of the wrong type is one error naming the file and the key.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"

class TrainSettings {
 public:
  static void declare(Args& args);  // the flags of both groups, with their help and defaults
  // A new run's settings from its flags over the training keys `file` named (Config::training).
  static TrainSettings from_flags(const Args& args, const nlohmann::json& file_keys = nlohmann::json::object(),
                                  const std::string& file = "");
  // The settings `avey train FLAGS` would start a new run with (its --config file read); FLAGS
  // holds only flags of declare(). For avey sweep, which runs avey train.
  static TrainSettings of_train_flags(const std::vector<std::string>& flags);
  // A resumed run's settings: run.json's (`what` names it), with the second group's flags that
  // were given; throws when a flag of the first group differs from the run's.
  static TrainSettings resumed(const nlohmann::json& saved, const Args& args, const std::string& what);

  std::string text(const std::string& flag) const;
  int64_t integer(const std::string& flag) const;
  double real(const std::string& flag) const;
  void set(const std::string& flag, const nlohmann::json& value) { json_[flag] = value; }
  const nlohmann::json& json() const { return json_; }
  bool changed() const { return changed_; }  // resumed with a report flag given anew
  bool chosen(const std::string& flag) const;  // given as a flag, or a key of the config file
  const nlohmann::json& from_file() const { return from_file_; }  // the flags the config file set

 private:
  TrainSettings(nlohmann::json j, std::string what) : json_(std::move(j)), what_(std::move(what)) {}
  void validate() const;  // ranges of the numbers: one UsageError naming the flag
  nlohmann::json json_;
  std::string what_;
  bool changed_ = false;
  nlohmann::json from_file_ = nlohmann::json::array();
  nlohmann::json chosen_ = nlohmann::json::array();  // a new run's flags given or set by the file
};
