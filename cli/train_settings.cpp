#include "cli/train_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "avey/config.h"
#include "cli/json_fields.h"
#include "data/corpus.h"

namespace {

// Text: as given. Path: made absolute ("" stays: the default). Config: a preset name, or a path.
// Data: a corpus name (data/corpus.h), or a path or glob.
enum class Kind { Text, Path, Config, Data, Integer, Real };

struct Flag {
  const char* name;
  const char* metavar;
  const char* help;
  const char* default_value;
  Kind kind;
  bool fixed;  // defines the computation: cannot change on --resume
};

const Flag kFlags[] = {
    {"config", "NAME|FILE", "model preset (tiny, small, medium, large, avey-b-base, avey-b-tiny) or a .json/.toml file",
     "tiny", Kind::Config, true},
    {"init-from", "DIR", "start from the weights (and config) of a run, checkpoint or reference folder", "", Kind::Path,
     true},
    {"precision", "fp32|bf16|auto", "bf16 mixed precision (GPU) or strict fp32 (auto: bf16 on GPU)", "auto", Kind::Text,
     true},
    {"max-steps", "N", "optimizer steps (the learning-rate schedule spans them)", "120", Kind::Integer, true},
    {"batch-size", "B", "sequences per micro-batch", "4", Kind::Integer, true},
    {"seq-len", "T", "tokens per sequence", "256", Kind::Integer, true},
    {"grad-accum", "N", "micro-batches per optimizer step", "1", Kind::Integer, true},
    {"lr", "X", "peak learning rate", "1e-3", Kind::Real, true},
    {"schedule", "KIND", "cosine (to 10% of peak), constant, or warmup_cosine (to 0)", "cosine", Kind::Text, true},
    {"warmup", "N", "linear warm-up steps", "0", Kind::Integer, true},
    {"weight-decay", "X", "AdamW weight decay on matrices", "0.1", Kind::Real, true},
    {"clip", "X", "global gradient-norm clip (0: off)", "1.0", Kind::Real, true},
    {"seed", "S", "seed for initialisation, data order and samples", "11", Kind::Integer, true},
    {"tokenizer", "NAME", "p50k, r50k or bytes (default with --init-from: the folder's)", "p50k", Kind::Text, true},
    {"data", "PATH", "corpus name (moby-dick, research), text/.jsonl file, folder, quoted glob or shards (default: moby-dick)",
     "", Kind::Data, true},
    {"eval-every", "N", "validation loss every N steps (0: only at the end)", "20", Kind::Integer, false},
    {"eval-batches", "N", "validation batches per evaluation", "8", Kind::Integer, false},
    {"sample-every", "N", "print a sample every N steps (0: only at the end)", "60", Kind::Integer, false},
    {"save-every", "N", "checkpoint (and validation loss) every N steps (0: only at the end or when stopped)", "60",
     Kind::Integer, false},
    {"keep-last", "K", "keep the newest K checkpoints, and the one of lowest validation loss (0: keep all)", "3",
     Kind::Integer, false},
    {"grad-stats", "N", "every N steps, gradient and weight norms per tensor and block to grad_stats.jsonl (0: off)", "0",
     Kind::Integer, false},
    {"niah-probe", "N", "at each evaluation, N passkey documents shorter than T: is the key copied? (0: off)", "0",
     Kind::Integer, false},
};

std::string key_of(const char* flag) {
  std::string key = flag;
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

// A config file's value for a flag, checked for the flag's type; a relative data path is taken
// from the file's folder.
nlohmann::json file_value(const Flag& f, const nlohmann::json& v, const std::string& file) {
  const std::string key = key_of(f.name);
  auto expect = [&](bool ok, const char* what) {
    if (!ok) throw UsageError(fmt::format("avey train: {}: key '{}': expected {}, got {}", file, key, what, v.dump()));
  };
  switch (f.kind) {
    case Kind::Integer: expect(v.is_number_integer(), "an integer"); return v;
    case Kind::Real: expect(v.is_number() && std::isfinite(v.get<double>()), "a finite number"); return v.get<double>();
    case Kind::Data: {
      expect(v.is_string(), "a string");
      const std::string s = v.get<std::string>();
      if (s.empty() || data::is_named_corpus(s) || std::filesystem::path(s).is_absolute()) return s;
      return (std::filesystem::absolute(file).parent_path() / s).lexically_normal().string();
    }
    case Kind::Path:
    case Kind::Config:
    case Kind::Text: expect(v.is_string(), "a string"); return v;
  }
  return v;
}

nlohmann::json typed(const Args& args, const Flag& f) {
  const std::string s = args.str(f.name);
  // as avey::load_config reads it: a .json or .toml file, else a preset's name
  const bool named = (f.kind == Kind::Config && !s.ends_with(".json") && !s.ends_with(".toml")) ||
                     (f.kind == Kind::Data && data::is_named_corpus(s));
  switch (f.kind) {
    case Kind::Integer: return args.integer(f.name);
    case Kind::Real:
      if (!std::isfinite(args.real(f.name)))
        throw UsageError(fmt::format("avey train: --{} must be a finite number, got {}", f.name, s));
      return args.real(f.name);
    case Kind::Path:
    case Kind::Config:
    case Kind::Data: return s.empty() || named ? s : std::filesystem::absolute(s).lexically_normal().string();
    case Kind::Text: break;
  }
  return s;
}

}  // namespace

void TrainSettings::declare(Args& args) {
  for (const Flag& f : kFlags) args.option(f.name, f.metavar, f.help, f.default_value);
}

TrainSettings TrainSettings::from_flags(const Args& args, const nlohmann::json& file_keys, const std::string& file) {
  TrainSettings s(nlohmann::json::object(), "the flags");
  for (const Flag& f : kFlags) {
    const std::string key = key_of(f.name);
    if (args.given(f.name) || file_keys.contains(key)) s.chosen_.push_back(f.name);
    if (args.given(f.name) || !file_keys.contains(key)) {
      s.json_[f.name] = typed(args, f);
    } else {
      s.json_[f.name] = file_value(f, file_keys[key], file);
      s.from_file_.push_back(f.name);
    }
  }
  for (auto it = file_keys.begin(); it != file_keys.end(); ++it)
    if (std::none_of(std::begin(kFlags), std::end(kFlags), [&](const Flag& f) { return key_of(f.name) == it.key(); }))
      throw std::logic_error("avey/config.cpp names the training key '" + it.key() + "', which is no avey train flag");
  s.validate();
  return s;
}

TrainSettings TrainSettings::of_train_flags(const std::vector<std::string>& flags) {
  Args args("train", "");
  declare(args);
  std::vector<std::string> words = {"train"};
  words.insert(words.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  args.parse(int(argv.size()), argv.data());
  const std::string config = args.str("config");
  return from_flags(args, avey::load_config(config).training, config);
}

bool TrainSettings::chosen(const std::string& flag) const {
  return std::find(chosen_.begin(), chosen_.end(), flag) != chosen_.end();
}

TrainSettings TrainSettings::resumed(const nlohmann::json& saved, const Args& args, const std::string& what) {
  TrainSettings s(saved, what);
  for (const Flag& f : kFlags) {
    // a report flag newer than the run (--grad-stats): its default
    if (!f.fixed && s.json_.is_object() && !s.json_.contains(f.name))
      s.json_[f.name] = f.kind == Kind::Integer ? nlohmann::json(std::stoll(f.default_value)) : nlohmann::json(f.default_value);
    // the saved value, checked for its type
    const nlohmann::json v = f.kind == Kind::Integer ? nlohmann::json(s.integer(f.name))
                             : f.kind == Kind::Real  ? nlohmann::json(s.real(f.name))
                                                     : nlohmann::json(s.text(f.name));
    if (!args.given(f.name)) continue;
    if (!f.fixed) {
      s.json_[f.name] = typed(args, f);
      s.changed_ = true;
    } else if (typed(args, f) != v)
      throw UsageError(fmt::format("avey train: --{} cannot change on --resume (the run has {})", f.name, v.dump()));
  }
  s.validate();
  return s;
}

std::string TrainSettings::text(const std::string& flag) const {
  return json_string(json_field(json_, flag, what_), flag, what_);
}
int64_t TrainSettings::integer(const std::string& flag) const {
  return json_int(json_field(json_, flag, what_), flag, what_, INT64_MIN);
}
double TrainSettings::real(const std::string& flag) const { return json_real(json_field(json_, flag, what_), flag, what_); }

void TrainSettings::validate() const {
  auto at_least = [&](const char* flag, int64_t min) {
    if (integer(flag) < min) throw UsageError(fmt::format("avey train: --{} must be >= {}, got {}", flag, min, integer(flag)));
  };
  for (const char* flag : {"max-steps", "batch-size", "seq-len", "grad-accum", "eval-batches"}) at_least(flag, 1);
  for (const char* flag :
       {"warmup", "seed", "eval-every", "sample-every", "save-every", "keep-last", "grad-stats", "niah-probe"})
    at_least(flag, 0);
  for (const char* flag : {"lr", "weight-decay", "clip"})
    if (real(flag) < 0) throw UsageError(fmt::format("avey train: --{} must be >= 0, got {}", flag, real(flag)));
  int64_t tokens = 0;
  if (__builtin_mul_overflow(integer("batch-size"), integer("seq-len"), &tokens) ||
      __builtin_mul_overflow(tokens, integer("grad-accum"), &tokens) || tokens > (int64_t(1) << 40))
    throw UsageError("avey train: --batch-size x --seq-len x --grad-accum is too large");
}
