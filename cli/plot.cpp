// `avey plot`: SVG plots of training runs, to compare them and read their gradients.
//
//   loss.svg                       the validation loss (metrics.jsonl) of every run, one curve each
// and for each run with grad_stats.jsonl (avey train --grad-stats N; the fields: grad_stats.h):
//   NAME-grad-norm.svg             heatmap, block x step: log10 of the block's gradient norm
//   NAME-update-ratio.svg          heatmap, block x step: log10 of ||update|| / ||weight||
//   NAME-output-grad.svg           heatmap, block x step: log10 of ||dL/dh_l|| at the block's output
//   NAME-grad-curves.svg           the gradient norm of every block over the steps, one curve each
// NAME is the run folder's name (with its parent's for a sweep's runs/VARIANT/seed-S). Each
// heatmap shares one colour scale over its cells (red: the smallest, green: the largest); more
// than 24 recorded steps are thinned to 24 evenly spaced ones.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/json_fields.h"
#include "cli/svg_heatmap.h"
#include "cli/svg_plot.h"

namespace fs = std::filesystem;

namespace {

// The JSON objects of a .jsonl file, one per line (a torn last line is skipped).
std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j["step"].is_number_integer()) out.push_back(std::move(j));
  }
  return out;
}

std::string run_name(const fs::path& run) {
  const fs::path p = fs::absolute(run).lexically_normal();
  const fs::path leaf = p.filename().empty() ? p.parent_path() : p;
  const std::string name = leaf.filename().string();
  return name.rfind("seed-", 0) == 0 ? leaf.parent_path().filename().string() + "-" + name : name;
}

std::string colour(size_t i, size_t n) { return fmt::format("hsl({:.0f}, 70%, {}%)", 300.0 * double(i) / double(std::max<size_t>(1, n - 1)), i % 2 ? 35 : 48); }

// One heatmap of a block field, log10, over the recorded steps (at most 24 columns).
void heatmap(const std::vector<nlohmann::json>& lines, const std::string& field, const std::string& title,
             const std::string& value_label, const std::string& path) {
  std::vector<size_t> cols;
  const size_t n = lines.size(), shown = std::min<size_t>(n, 24);
  for (size_t i = 0; i < shown; ++i) cols.push_back(shown == 1 ? 0 : i * (n - 1) / (shown - 1));
  Heatmap map{title, "step", "block", value_label, {}, {}, {}, INFINITY, -INFINITY, 1};
  const size_t blocks = lines.front()["blocks"].size();
  for (size_t b = 0; b < blocks; ++b) map.rows.push_back(std::to_string(b));
  map.values.assign(blocks, std::vector<double>(cols.size(), NAN));
  for (size_t c = 0; c < cols.size(); ++c) {
    const nlohmann::json& line = lines[cols[c]];
    map.columns.push_back(std::to_string(line["step"].get<int64_t>()));
    for (const nlohmann::json& b : line["blocks"]) {
      const size_t row = b["block"].get<size_t>();
      const double x = json_number_or_nan(b, field.c_str()), v = x > 0 ? std::log10(x) : NAN;
      if (row >= blocks || !std::isfinite(v)) continue;
      map.values[row][c] = v;
      map.low = std::min(map.low, v), map.high = std::max(map.high, v);
    }
  }
  if (!std::isfinite(map.low)) map.low = 0, map.high = 1;
  write_svg_heatmap(path, map);
}

void plot_grad_stats(const std::string& file, const std::string& name, const std::string& out) {
  const std::vector<nlohmann::json> lines = read_lines(file);
  if (lines.empty()) throw std::runtime_error(file + ": no grad-stats lines");
  for (const nlohmann::json& line : lines)
    if (!line["blocks"].is_array() || line["blocks"].empty() || !line["blocks"][0]["block"].is_number_integer())
      throw std::runtime_error(fmt::format("{}: step {}: no \"blocks\" array of block norms", file, line["step"].dump()));
  heatmap(lines, "grad_norm", name + ": gradient norm per block", "log10 ||g||", out + "/" + name + "-grad-norm.svg");
  heatmap(lines, "update_ratio", name + ": update / weight per block", "log10 ||dw|| / ||w||",
          out + "/" + name + "-update-ratio.svg");
  heatmap(lines, "output_grad_norm", name + ": gradient at each block's output", "log10 ||dL/dh||",
          out + "/" + name + "-output-grad.svg");
  const size_t blocks = lines.front()["blocks"].size();
  std::vector<Series> curves;
  for (size_t b = 0; b < blocks; ++b) {
    Series s{fmt::format("block {}", b), colour(b, blocks), {}};
    for (const nlohmann::json& line : lines)
      for (const nlohmann::json& j : line["blocks"])
        if (const double g = json_number_or_nan(j, "grad_norm"); j["block"].get<size_t>() == b && !std::isnan(g))
          s.points.emplace_back(line["step"].get<double>(), g);
    curves.push_back(std::move(s));
  }
  write_svg_plot(out + "/" + name + "-grad-curves.svg", name + ": gradient norm per block", "step", "||g|| (before clipping)",
                 curves);
}

int run_plot(int argc, char** argv) {
  Args args("plot", "SVG plots of training runs: validation curves, and gradient heatmaps from --grad-stats.");
  args.option("run", "DIR[,DIR...]", "run folders (metrics.jsonl, and grad_stats.jsonl when recorded)");
  args.option("out", "DIR", "where the SVG files go", "plots");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("run")) throw UsageError("avey plot: --run is required");
  const std::string out = args.str("out");
  const std::vector<std::string> runs = args.list("run");
  for (const std::string& run : runs)
    if (!fs::exists(run + "/metrics.jsonl")) throw UsageError("avey plot: " + run + " holds no metrics.jsonl (not a run folder)");
  fs::create_directories(out);
  std::vector<Series> val;
  std::vector<std::string> written;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string name = run_name(runs[i]);
    Series s{name, colour(i, runs.size()), {}};
    for (const nlohmann::json& j : read_lines(runs[i] + "/metrics.jsonl"))
      if (const double v = json_number_or_nan(j, "val_loss"); !std::isnan(v)) s.points.emplace_back(j["step"].get<double>(), v);
    val.push_back(std::move(s));
    if (fs::exists(runs[i] + "/grad_stats.jsonl")) {
      plot_grad_stats(runs[i] + "/grad_stats.jsonl", name, out);
      for (const char* kind : {"grad-norm", "update-ratio", "output-grad", "grad-curves"})
        written.push_back(fmt::format("{}-{}.svg", name, kind));
    }
  }
  write_svg_plot(out + "/loss.svg", "Validation loss", "step", "validation loss (nats/token)", val);
  written.insert(written.begin(), "loss.svg");
  for (const std::string& w : written) fmt::print("{}/{}\n", out, w);
  return 0;
}

const RegisterCommand reg{{"plot", "SVG plots of runs: validation curves, gradient heatmaps (--grad-stats)", run_plot}};

}  // namespace
