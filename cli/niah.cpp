// `avey niah`: needle-in-a-haystack accuracy of a trained model over context lengths and needle
// depths (the prompts and scoring: data/niah_prompts.h; the experiment: docs/niah.md).
//
// For each length, depth and sample: build the prompt, tokenise it, decode greedily in generation
// mode (Model::next_token_logits ranks and processes only the newest token's split, so a prompt
// of L tokens costs O(L) however long it is), score the continuation. Each cell's generation time
// and peak memory are measured; the results file is rewritten after every cell (so --resume can
// continue an interrupted run), then the tables are printed and the heatmap is drawn.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/model_folder.h"
#include "cli/niah_report.h"
#include "cli/run_data.h"
#include "cli/sampling.h"
#include "data/data_dir.h"
#include "data/documents.h"
#include "data/niah_prompts.h"
#include "data/paths.h"
#include "data/progress.h"
#include "engine/atomic_file.h"
#include "engine/device_info.h"

namespace fs = std::filesystem;
namespace niah = data::niah;

namespace {

// A list flag's values, each within lo..hi.
std::vector<int64_t> bounded(const Args& args, const std::string& flag, int64_t lo, int64_t hi) {
  std::vector<int64_t> out = args.integers(flag);
  for (int64_t v : out)
    if (v < lo || v > hi)
      throw UsageError(fmt::format("avey niah: --{} values must be within {}..{}, got {}", flag, lo, hi, v));
  return out;
}

// The haystack text of sniah2: a file, or a folder's *.txt files one after the other.
std::string haystack_text(const std::string& path) { return data::documents_text(data::expand_path(path, {".txt"})); }

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(t));
}

// One sample's prompt and answer.
struct Prompt {
  std::string text, answer;
};

int run_niah(int argc, char** argv) {
  Args args("niah", "Needle-in-a-haystack accuracy of a trained model by context length and needle depth.");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("task", "NAME", "passkey (the reference's), sniah1 or sniah2 (RULER's niah_single_1 and _2)", "passkey");
  args.option("lengths", "L,L,...", "context lengths in tokens (passkey: nominal, 3.75 characters a token)",
              "1000,2000,4000,8000,16000,24000,32000,40000,48000,56000,64000");
  args.option("depths", "D,D,...", "needle depths: percent of the haystack before the needle", "10,20,30,40,50,60,70,80,90");
  args.option("samples", "N", "samples per cell (the same keys or needles in every cell)", "5");
  args.option("json", "FILE", "results, rewritten after every cell; the heatmap and tables go beside it (.svg, .md)",
              "niah.json");
  args.option("keys", "reference|random", "passkey: the reference's five keys first, or every key drawn", "reference");
  args.option("seed", "S", "seed of the drawn keys and needles", "11");
  args.option("haystack", "PATH", "sniah2: the text the needle hides in, a file or a folder of .txt files "
              "(default: Moby Dick, whole)");
  args.option("max-new-tokens", "N", "tokens to generate (0: those of ' ' + the passkey, or the value's tokens + 8)", "0");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("resume", "keep the cells the results file holds for the same checkpoint and settings");
  if (!args.parse(argc, argv)) return 0;

  niah::Task task;
  try {
    task = niah::parse_task(args.str("task"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("avey niah: --task: ") + e.what());
  }
  const std::vector<int64_t> lengths = bounded(args, "lengths", 1, int64_t(1) << 40);
  std::vector<int> depths;
  for (int64_t d : bounded(args, "depths", 0, 100)) depths.push_back(int(d));
  const int64_t samples = args.integer("samples"), max_new_flag = args.integer("max-new-tokens");
  if (samples < 1) throw UsageError("avey niah: --samples must be at least 1");
  if (max_new_flag < 0) throw UsageError("avey niah: --max-new-tokens must not be negative");
  const std::string keys_mode = args.str("keys");
  if (keys_mode != "reference" && keys_mode != "random")
    throw UsageError("avey niah: --keys must be reference or random, got '" + keys_mode + "'");
  const std::string json_path = args.str("json");
  const std::string stem = json_path.size() > 5 && json_path.ends_with(".json") ? json_path.substr(0, json_path.size() - 5)
                                                                                   : json_path;
  if (fs::exists(json_path) && !args.on("resume"))
    throw UsageError("avey niah: " + json_path + " exists; continue it with --resume or choose another --json");
  const uint64_t seed = uint64_t(args.integer("seed"));
  const std::string haystack_path =
      task != niah::Task::Sniah2 ? "" : args.given("haystack") ? args.str("haystack") : data::data_dir() + "/moby-dick/data.txt";

  const std::string dir = args.str("checkpoint");
  const ModelFolder run = open_model_folder(dir);
  auto tok = tokenizer_for(run.spec.tokenizer, run.spec.config);
  const engine::Device device = resolve_device(args.str("device"));

  // The answers of samples 0..N-1, the same in every cell.
  const std::vector<std::string> keys = niah::passkeys(size_t(samples), keys_mode == "reference", seed);
  const std::vector<niah::Needle> needles = niah::needles(size_t(samples), seed);
  const niah::Haystack haystack =
      task == niah::Task::Sniah2 ? niah::Haystack::essay(haystack_text(haystack_path)) : niah::Haystack::repeat();
  auto answer_tokens = [&](const std::string& a) { return int64_t(tok->encode_ordinary(a).size()); };
  int64_t ruler_new = 0;  // sniah: the same budget for every sample
  for (const niah::Needle& n : needles) ruler_new = std::max(ruler_new, answer_tokens(n.value) + 8);
  auto max_new = [&](int64_t s) {
    if (max_new_flag > 0) return max_new_flag;
    return task == niah::Task::Passkey ? niah::passkey_new_tokens(*tok, keys[size_t(s)]) : ruler_new;
  };

  NiahReport report;
  report.header = {{"settings",
                    {{"task", niah::name_of(task)},
                     {"checkpoint", dir},
                     {"step", run.step},
                     {"samples", samples},
                     {"seed", seed},
                     {"keys", task == niah::Task::Passkey ? keys_mode : "drawn"},
                     {"max_new_tokens", max_new_flag},
                     {"haystack", haystack_path}}},
                   {"model", run.spec.config.to_json()},
                   {"tokenizer", run.spec.tokenizer},
                   {"device", engine::device_name(device)},
                   {"memory", device == engine::Device::CUDA ? "peak GPU tensors" : "peak RSS"}};
  if (args.on("resume") && fs::exists(json_path)) {
    std::ifstream in(json_path);
    nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
    if (old.is_discarded()) throw std::runtime_error(json_path + " is not valid JSON");
    NiahReport previous = report_from_json(old);
    if (previous.header.value("settings", nlohmann::json()) != report.header["settings"])
      throw UsageError(fmt::format("avey niah: {} holds results for other settings ({}); choose another --json", json_path,
                                   previous.header.value("settings", nlohmann::json()).dump()));
    report.cells = std::move(previous.cells);
  }
  std::string command = "avey";
  for (int i = 0; i < argc; ++i) command += std::string(" ") + argv[i];
  report.header["command"] = command;

  avey::Model model(run.spec.config, device, resolve_precision("auto", device));
  load_weights(run, model);

  auto prompt_for = [&](int64_t length, int64_t units, int depth, int64_t s) -> Prompt {
    if (task == niah::Task::Passkey)
      return {niah::passkey_prompt(niah::passkey_chars(length), depth, keys[size_t(s)]), keys[size_t(s)]};
    return {niah::ruler_prompt(haystack, units, depth, needles[size_t(s)]), needles[size_t(s)].value};
  };
  auto correct = [&](const std::string& output, const std::string& answer) {
    return task == niah::Task::Passkey ? niah::passkey_correct(output, answer) : niah::ruler_correct(output, answer);
  };
  if (fs::path(json_path).has_parent_path()) fs::create_directories(fs::path(json_path).parent_path());
  auto save = [&] {
    report.header["date"] = utc_now();
    engine::write_file_atomic(json_path, to_json(report).dump(1) + "\n");
    engine::write_file_atomic(stem + ".md", markdown_tables(report, lengths, depths));
    write_svg_heatmap(stem + ".svg", heatmap_of(report, lengths, depths));
  };

  // The ETA: the samples left at each length, times a sample's seconds fitted as a + b * length.
  std::map<int64_t, int64_t> left;
  for (int64_t L : lengths)
    for (int d : depths)
      if (!report.find(L, d)) left[L] += samples;
  data::CostFit fit;
  auto eta = [&] {
    double total = 0;
    for (auto [L, n] : left) total += double(n) * fit.predict(double(L));
    return data::format_duration(total);
  };
  const auto start = std::chrono::steady_clock::now();
  auto last_line = start;
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  const size_t cells_total = lengths.size() * depths.size();
  size_t cell_index = 0;
  fmt::print(stderr, "niah {}: {} lengths x {} depths x {} samples on {} ({})\n", niah::name_of(task), lengths.size(),
             depths.size(), samples, engine::device_name(device), dir);
  for (int64_t L : lengths) {
    int64_t units = 0;  // sniah: haystack lines or words for this length
    if (left[L] > 0 && task != niah::Task::Passkey) {
      units = niah::ruler_units(haystack, *tok, L - ruler_new, needles[0]);
      if (units == 0)
        throw UsageError(fmt::format("avey niah: length {} is too short for the {} prompt and {} generated tokens", L,
                                     niah::name_of(task), ruler_new));
    }
    for (int d : depths) {
      ++cell_index;
      if (report.find(L, d)) continue;
      NiahCell cell{L, d, {}, 0, 0};
      engine::reset_peak_memory(device);
      for (int64_t s = 0; s < samples; ++s) {
        const auto sample_start = std::chrono::steady_clock::now();
        const Prompt p = prompt_for(L, units, d, s);
        std::vector<int32_t> ids = tok->encode_ordinary(p.text);
        const int64_t prompt_tokens = int64_t(ids.size());
        SampleOptions greedy{.max_new_tokens = max_new(s), .temperature = 0.0, .stop_token = tok->eot(),
                             .vocab_limit = tok->vocab_size()};
        engine::Rng unused(0);  // greedy decoding draws nothing
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<int32_t> out = sample(model, ids, greedy, unused);
        cell.seconds += since(t0);
        NiahSample r{p.answer, tok->decode(out), false, prompt_tokens};
        r.correct = correct(r.output, r.answer);
        cell.samples.push_back(r);
        fit.add(double(L), since(sample_start));
        left[L]--;
        if (since(last_line) > 5 && s + 1 < samples) {  // a slow cell shows its samples too
          fmt::print(stderr, "niah {} | {} depth {}% | sample {}/{} | {} tokens | {} | {} | ETA {}\n", niah::name_of(task),
                     length_label(L), d, s + 1, samples, prompt_tokens, r.correct ? "right" : "wrong",
                     data::format_duration(since(start)), eta());
          last_line = std::chrono::steady_clock::now();
        }
      }
      cell.peak_bytes = engine::peak_memory_bytes(device);
      report.cells.push_back(cell);
      save();
      fmt::print(stderr, "niah {} | {} depth {}% | {:.0f}% right | {:.0f} tokens | {:.3g} s a sample | {:.0f} MiB | cell {}/{} "
                 "| {} | ETA {}\n", niah::name_of(task), length_label(L), d, cell.accuracy(), cell.mean_prompt_tokens(),
                 cell.seconds / double(samples), double(cell.peak_bytes) / double(1 << 20), cell_index, cells_total,
                 data::format_duration(since(start)), eta());
      last_line = std::chrono::steady_clock::now();
    }
  }
  save();
  fmt::print("{}\nwrote {}, {}.md, {}.svg\n", markdown_tables(report, lengths, depths), json_path, stem, stem);
  return 0;
}

const RegisterCommand reg{{"niah", "needle-in-a-haystack accuracy by context length and depth", run_niah}};

}  // namespace
