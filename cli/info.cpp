// `avey info`: a config's parameter count, in total and per tensor (reference names).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "avey/model.h"
#include "cli/args.h"
#include "cli/command.h"
#include "engine/tensor.h"

namespace {

int run_info(int argc, char** argv) {
  Args args("info", "Print a config's parameter count, in total and per tensor.");
  args.option("config", "NAME|FILE", "preset (tiny, small, medium, large) or .json/.toml file");
  args.flag("json", "print {\"parameters\": N, \"tensors\": {name: [shape]}, \"config\": {...}}");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("config")) throw UsageError("avey info: --config is required");
  avey::Config cfg = avey::load_config(args.str("config"));
  const int64_t d = cfg.d_embed, m = cfg.expanded_width(), C = cfg.context_rows();
  const auto tensors = avey::parameter_layout(cfg);
  int64_t total = 0;
  for (auto& [n, s] : tensors) total += engine::numel(s);
  if (total != cfg.param_count()) throw std::logic_error("parameter layout and count disagree");
  if (args.on("json")) {
    nlohmann::ordered_json j;
    j["parameters"] = total;
    j["tensors"] = nlohmann::ordered_json::object();
    for (auto& [n, s] : tensors) j["tensors"][n] = s;
    j["config"] = cfg.to_json();
    fmt::print("{}\n", j.dump());
    return 0;
  }
  std::string digits = std::to_string(total), grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  fmt::print("parameters {}\n", grouped);
  fmt::print("d {} layers {} m {} tail {} (half {}) head {} S {} k {} C {}\n", d, cfg.n_layers, m, cfg.tail_width(),
             cfg.half_tail(), cfg.head_width(), cfg.split_size, cfg.top_k, C);
  for (auto& [n, s] : tensors) fmt::print("  {:48} {:>16} {:>12}\n", n, engine::to_string(s), engine::numel(s));
  return 0;
}

const RegisterCommand reg{{"info", "parameter count of a config, total and per tensor", run_info}};

}  // namespace
