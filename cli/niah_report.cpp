#include "cli/niah_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

double NiahCell::accuracy() const {
  int64_t right = 0;
  for (const NiahSample& s : samples) right += s.correct;
  return samples.empty() ? 0 : 100.0 * double(right) / double(samples.size());
}

double NiahCell::mean_prompt_tokens() const {
  double sum = 0;
  for (const NiahSample& s : samples) sum += double(s.prompt_tokens);
  return samples.empty() ? 0 : sum / double(samples.size());
}

const NiahCell* NiahReport::find(int64_t length, int depth) const {
  for (const NiahCell& c : cells)
    if (c.length == length && c.depth == depth) return &c;
  return nullptr;
}

nlohmann::json to_json(const NiahReport& report) {
  nlohmann::json j = report.header;
  j["cells"] = nlohmann::json::array();
  for (const NiahCell& c : report.cells) {
    nlohmann::json samples = nlohmann::json::array();
    for (const NiahSample& s : c.samples)
      samples.push_back({{"answer", s.answer}, {"output", s.output}, {"correct", s.correct}, {"prompt_tokens", s.prompt_tokens}});
    j["cells"].push_back({{"length", c.length},
                          {"depth", c.depth},
                          {"accuracy", c.accuracy()},
                          {"seconds", c.seconds},
                          {"peak_bytes", c.peak_bytes},
                          {"samples", samples}});
  }
  return j;
}

NiahReport report_from_json(const nlohmann::json& j) {
  NiahReport r;
  try {
    r.header = j;
    r.header.erase("cells");
    for (const auto& c : j.at("cells")) {
      NiahCell cell;
      cell.length = c.at("length").get<int64_t>();
      cell.depth = c.at("depth").get<int>();
      cell.seconds = c.at("seconds").get<double>();
      cell.peak_bytes = c.at("peak_bytes").get<int64_t>();
      for (const auto& s : c.at("samples"))
        cell.samples.push_back({s.at("answer").get<std::string>(), s.at("output").get<std::string>(),
                                s.at("correct").get<bool>(), s.at("prompt_tokens").get<int64_t>()});
      r.cells.push_back(std::move(cell));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("not a results file of avey niah (" + std::string(e.what()) + ")");
  }
  return r;
}

std::string length_label(int64_t length) {
  if (length >= 1000000 && length % 1000000 == 0) return fmt::format("{}M", length / 1000000);
  if (length >= 1000 && length % 1000 == 0) return fmt::format("{}K", length / 1000);
  return std::to_string(length);
}

namespace {

std::string header_row(const std::string& corner, const std::vector<int64_t>& lengths) {
  std::string head = "| " + corner + " |", rule = "|---|";
  for (int64_t L : lengths) head += " " + length_label(L) + " |", rule += "---|";
  return head + "\n" + rule + "\n";
}

std::string mib(int64_t bytes) { return fmt::format("{:.0f} MiB", double(bytes) / double(1 << 20)); }

// An output as a markdown table cell: quoted, its newlines and bars escaped.
std::string cell_text(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '\n' ? std::string("\\n") : c == '|' ? std::string("\\|") : std::string(1, c);
  return out + "\"";
}

// Per answer (sample) over all cells: how often right, and the outputs the model gave most. This
// tells "copies the needle" from "answers a number, not the needle's" and from "continues the filler".
std::string answers_table(const NiahReport& report, const std::string& task) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<int, int>> right;            // answer -> (right, prompts)
  std::map<std::string, std::map<std::string, int>> outputs;  // answer -> output -> times
  for (const NiahCell& c : report.cells)
    for (const NiahSample& s : c.samples) {
      if (!right.count(s.answer)) order.push_back(s.answer);
      right[s.answer].first += s.correct, right[s.answer].second++;
      outputs[s.answer][s.output]++;
    }
  std::string t = fmt::format("{}: answers by sample, over all cells\n\n| answer | right | most frequent outputs |\n|---|---|---|\n", task);
  for (const std::string& a : order) {
    std::vector<std::pair<int, std::string>> most;
    for (const auto& [out, n] : outputs[a]) most.push_back({-n, out});
    std::sort(most.begin(), most.end());
    std::string list;
    for (size_t i = 0; i < std::min<size_t>(3, most.size()); ++i)
      list += fmt::format("{}{} x{}", i ? ", " : "", cell_text(most[i].second), -most[i].first);
    t += fmt::format("| {} | {} / {} | {} |\n", a, right[a].first, right[a].second, list);
  }
  return t;
}

}  // namespace

std::string markdown_tables(const NiahReport& report, const std::vector<int64_t>& lengths, const std::vector<int>& depths) {
  const std::string task = report.header.value("/settings/task"_json_pointer, std::string("?"));
  const std::string memory = report.header.value("memory", std::string("peak memory"));
  std::string acc = fmt::format("{}: accuracy (%) by needle depth and context length ({} samples a cell)\n\n", task,
                                report.header.value("/settings/samples"_json_pointer, 0));
  std::string cost = fmt::format("{}: generation seconds per sample | {} per cell\n\n", task, memory);
  acc += header_row("depth", lengths);
  cost += header_row("depth", lengths);
  std::vector<double> sum(lengths.size(), 0);
  std::vector<int> counted(lengths.size(), 0);
  for (int d : depths) {
    acc += fmt::format("| {}% |", d);
    cost += fmt::format("| {}% |", d);
    for (size_t i = 0; i < lengths.size(); ++i) {
      const NiahCell* c = report.find(lengths[i], d);
      if (!c) {
        acc += " - |", cost += " - |";
        continue;
      }
      acc += fmt::format(" {:.0f} |", c->accuracy());
      cost += fmt::format(" {:.3g} s, {} |", c->seconds / double(std::max<size_t>(c->samples.size(), 1)), mib(c->peak_bytes));
      sum[i] += c->accuracy(), counted[i]++;
    }
    acc += "\n", cost += "\n";
  }
  acc += "| **mean** |";
  std::string tokens = "| prompt tokens (mean) |";
  for (size_t i = 0; i < lengths.size(); ++i) {
    acc += counted[i] ? fmt::format(" **{:.1f}** |", sum[i] / counted[i]) : " - |";
    double t = 0;
    int n = 0;
    for (int d : depths)
      if (const NiahCell* c = report.find(lengths[i], d)) t += c->mean_prompt_tokens(), n++;
    tokens += n ? fmt::format(" {:.0f} |", t / n) : " - |";
  }
  return acc + "\n" + tokens + "\n\n" + cost + "\n" + answers_table(report, task);
}

Heatmap heatmap_of(const NiahReport& report, const std::vector<int64_t>& lengths, const std::vector<int>& depths) {
  Heatmap map;
  map.title = fmt::format("{}: {} (step {})", report.header.value("/settings/task"_json_pointer, std::string("?")),
                          report.header.value("/settings/checkpoint"_json_pointer, std::string("?")),
                          report.header.value("/settings/step"_json_pointer, int64_t(0)));
  map.x_label = "context length (tokens)";
  map.y_label = "needle depth (%)";
  map.value_label = "accuracy (%)";
  for (int64_t L : lengths) map.columns.push_back(length_label(L));
  for (int d : depths) {
    map.rows.push_back(std::to_string(d));
    std::vector<double> row;
    for (int64_t L : lengths) {
      const NiahCell* c = report.find(L, d);
      row.push_back(c ? c->accuracy() : std::numeric_limits<double>::quiet_NaN());
    }
    map.values.push_back(row);
  }
  return map;
}
