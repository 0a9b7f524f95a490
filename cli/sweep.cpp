// `avey sweep`: variants of a base config (the paper's ablations, or config files of overrides)
// trained under one token budget, each with N seeds, and their table. The folder --out DIR:
//
//   sweep.json               what the sweep trains (base keys, variants, budget, seeds, data):
//                            rerunning into DIR with other settings is refused
//   configs/NAME.json        each variant's config: the base's keys with its overrides
//   runs/NAME/seed-S/        an `avey train` run folder (run_folder.h), and eval.json: `avey eval
//                            --json` of its last checkpoint
//   results.json, results.md one row per variant; curves.svg: validation loss against tokens seen
//
// Every run is an `avey train` child process, so a sweep is resumable as a run is: a rerun of
// the same command skips finished runs, continues an unfinished one with --resume from its last
// checkpoint (one every tenth of the run), and starts the rest. Ctrl-C or SIGTERM stops the run
// in progress after its step, with a checkpoint, and the sweep with it.
//
// Per variant and seed: steps = floor(budget / (batch_size x seq_len x grad_accum)) of its own
// settings (a variant of another T sees as many tokens); validation loss and bits per byte from
// avey eval (the whole validation set, or --final-eval-batches); tok/s the median of the run's
// steps after the first. Per variant: the mean over seeds (± the sample standard deviation), and
// delta = val_loss(variant, s) - val_loss(base, s) paired by seed, its mean ± sample std.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli/ablations.h"
#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/command.h"
#include "cli/json_fields.h"
#include "cli/run_folder.h"
#include "cli/svg_plot.h"
#include "cli/train_settings.h"
#include "engine/atomic_file.h"

namespace fs = std::filesystem;

namespace {

// The child avey in progress: SIGINT/SIGTERM to the sweep are passed on to it, which stops after
// its step with a checkpoint; the sweep then stops too.
volatile std::sig_atomic_t g_child = 0;
void forward(int sig) {
  if (g_child > 0) ::kill(pid_t(g_child), sig);
}

// Runs `avey ARGS` (this same executable) and waits; its stdout to `out` when given. The child
// has its own process group, so a Ctrl-C reaches it once, through the sweep.
int run_avey(const std::vector<std::string>& args, const std::string& out = "") {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    if (!out.empty()) {
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0) ::_exit(126);
      ::close(fd);
    }
    std::vector<std::string> words = {"avey"};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  if (pid < 0) throw std::runtime_error("cannot start a child avey (fork failed)");
  g_child = pid;
  auto old_int = std::signal(SIGINT, forward), old_term = std::signal(SIGTERM, forward);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  std::signal(SIGINT, old_int), std::signal(SIGTERM, old_term);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Mean {
  double mean = NAN, std = NAN;  // std: sample standard deviation (NaN for one value)
};
Mean mean_std(const std::vector<double>& xs) {
  Mean m;
  if (xs.empty()) return m;
  m.mean = 0;
  for (double x : xs) m.mean += x / double(xs.size());
  if (xs.size() < 2) return m;
  double ss = 0;
  for (double x : xs) ss += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(ss / double(xs.size() - 1));
  return m;
}

// A number for the table: "-" when not finite; "x ± s" when s is.
std::string cell(Mean m, int digits) {
  if (!std::isfinite(m.mean)) return "-";
  std::string s = fmt::format("{:.{}f}", m.mean, digits);
  return std::isfinite(m.std) ? s + fmt::format(" ± {:.{}f}", m.std, digits) : s;
}

// One run's record: its metrics (validation curve, median tok/s) and eval.json.
struct RunResult {
  int64_t seed = 0;
  double val_loss = NAN, bpb = NAN, tok_s = NAN;
  std::vector<std::pair<double, double>> curve;  // (step, validation loss)
};

RunResult read_run(const std::string& run, int64_t seed) {
  RunResult r;
  r.seed = seed;
  std::vector<double> rates;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    const double step = json_number_or_nan(j, "step"), val = json_number_or_nan(j, "val_loss"),
                 rate = json_number_or_nan(j, "tok_s");
    if (std::isnan(step)) continue;
    if (!std::isnan(val)) r.curve.emplace_back(step, val);
    if (!std::isnan(rate) && step > 1) rates.push_back(rate);
  }
  if (!rates.empty()) {
    std::nth_element(rates.begin(), rates.begin() + rates.size() / 2, rates.end());
    r.tok_s = rates[rates.size() / 2];
  }
  const nlohmann::json ev = read_json_object(run + "/eval.json");
  r.val_loss = json_number_or_nan(ev, "loss");
  r.bpb = json_number_or_nan(ev, "bpb");
  return r;
}

struct Planned {
  Variant variant;
  std::string config;  // DIR/configs/NAME.json
  int64_t params = 0, steps = 0, tokens_per_step = 0;
  TrainSettings settings;  // its runs' (seed aside)
  std::vector<RunResult> runs;
};

// The variants --variants names: "paper", or a comma list of the paper's names and config files
// of overrides (named by their stem). "base" comes first always.
std::vector<Variant> chosen_variants(const std::string& spec, const avey::Config& base) {
  const std::vector<Variant> paper = paper_variants(base);
  if (spec == "paper") return paper;
  std::vector<Variant> out = {paper.front()};
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t end = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, end - start);
    start = end + 1;
    if (item == "base") continue;
    if (item.ends_with(".json") || item.ends_with(".toml")) {
      out.push_back({fs::path(item).stem().string(), "overrides in " + item, "", avey::config_keys(item)});
      continue;
    }
    auto it = std::find_if(paper.begin(), paper.end(), [&](const Variant& v) { return v.name == item; });
    if (it == paper.end()) {
      std::string names;
      for (const Variant& v : paper) names += (names.empty() ? "" : ", ") + v.name;
      throw UsageError(fmt::format("avey sweep: unknown variant '{}' (the paper's: {}; or a .json/.toml file)", item, names));
    }
    out.push_back(*it);
  }
  for (size_t i = 0; i < out.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name) throw UsageError("avey sweep: variant '" + out[i].name + "' is named twice");
  return out;
}

std::string results_markdown(const std::vector<Planned>& plan, const nlohmann::json& sweep) {
  std::string md = fmt::format(
      "# Sweep: {} variants, {} tokens each, {} seed(s)\n\nBase config: `{}`; data: {}. Validation loss (nats per "
      "token) and bits per byte from `avey eval` of each run's last checkpoint; ± is the sample standard deviation over "
      "seeds; delta is the variant's validation loss minus the base's, paired by seed (negative: better than the "
      "base). \"paper kept\" names what the paper's design has in the variant's place.\n\n",
      plan.size(), sweep["budget"].get<int64_t>(), sweep["seeds"].get<int64_t>(), sweep["config_file"].get<std::string>(),
      sweep["data"].get<std::string>().empty() ? "moby-dick" : sweep["data"].get<std::string>());
  md += "| variant | study | paper kept | parameters | steps | val loss | bits per byte | tok/s | delta vs base |\n";
  md += "|---|---|---|---|---|---|---|---|---|\n";
  const std::vector<RunResult>& base = plan.front().runs;
  for (const Planned& p : plan) {
    std::vector<double> loss, bpb, rate, delta;
    for (size_t s = 0; s < p.runs.size(); ++s) {
      loss.push_back(p.runs[s].val_loss), bpb.push_back(p.runs[s].bpb), rate.push_back(p.runs[s].tok_s);
      delta.push_back(p.runs[s].val_loss - base[s].val_loss);
    }
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.0f} | {} |\n", p.variant.name, p.variant.study,
                      p.variant.paper, p.params, p.steps, cell(mean_std(loss), 4), cell(mean_std(bpb), 4),
                      mean_std(rate).mean, &p == &plan.front() ? "0" : cell(mean_std(delta), 4));
  }
  return md;
}

nlohmann::json results_json(const std::vector<Planned>& plan, const nlohmann::json& sweep) {
  nlohmann::json rows = nlohmann::json::array();
  const std::vector<RunResult>& base = plan.front().runs;
  for (const Planned& p : plan) {
    std::vector<double> loss, bpb, rate, delta;
    nlohmann::json seeds = nlohmann::json::array();
    for (size_t s = 0; s < p.runs.size(); ++s) {
      const RunResult& r = p.runs[s];
      loss.push_back(r.val_loss), bpb.push_back(r.bpb), rate.push_back(r.tok_s);
      delta.push_back(r.val_loss - base[s].val_loss);
      seeds.push_back({{"seed", r.seed}, {"val_loss", r.val_loss}, {"bpb", r.bpb}, {"tok_s", r.tok_s}});
    }
    const Mean l = mean_std(loss), b = mean_std(bpb), d = mean_std(delta);
    rows.push_back({{"variant", p.variant.name},   {"study", p.variant.study},     {"paper_kept", p.variant.paper},
                    {"overrides", p.variant.overrides}, {"params", p.params},        {"steps", p.steps},
                    {"tokens", p.steps * p.tokens_per_step}, {"val_loss", l.mean}, {"val_loss_std", l.std},
                    {"bpb", b.mean},               {"bpb_std", b.std},             {"tok_s", mean_std(rate).mean},
                    {"delta_val_loss", d.mean},    {"delta_val_loss_std", d.std},  {"seeds", seeds}});
  }
  return {{"sweep", sweep}, {"rows", rows}};
}

// Validation loss against tokens seen (millions), the seeds' mean at each evaluated step.
void plot_curves(const std::string& path, const std::vector<Planned>& plan) {
  std::vector<Series> series;
  for (size_t i = 0; i < plan.size(); ++i) {
    const Planned& p = plan[i];
    Series s{p.variant.name, fmt::format("hsl({:.0f}, 70%, {}%)", 360.0 * double(i) / double(plan.size()), i % 2 ? 35 : 50),
             {}};
    for (size_t k = 0; k < p.runs.front().curve.size(); ++k) {
      double sum = 0;
      size_t n = 0;
      for (const RunResult& r : p.runs)
        if (k < r.curve.size()) sum += r.curve[k].second, ++n;
      s.points.emplace_back(p.runs.front().curve[k].first * double(p.tokens_per_step) / 1e6, sum / double(n));
    }
    series.push_back(std::move(s));
  }
  write_svg_plot(path, "Validation loss by variant (mean over seeds)", "tokens seen (millions)",
                 "validation loss (nats/token)", series);
}

int run_sweep(int argc, char** argv) {
  Args args("sweep", "Train variants of a base config under one token budget, with seeds; write their table and curves.");
  args.option("config", "FILE|NAME", "the base: a .json/.toml config (model and training keys) or a preset", "tiny");
  args.option("variants", "paper|LIST", "paper (every ablation of the paper), or a comma list of its variants' names "
              "and .json/.toml files of config overrides", "paper");
  args.option("budget", "TOKENS", "training tokens of every run");
  args.option("seeds", "N", "runs per variant (seeds: the config's seed, +1, ...)", "1");
  args.option("out", "DIR", "the sweep's folder (resumable: rerun the same command to continue)");
  args.option("data", "PATH", "training data, as avey train --data (default: the config's, else moby-dick)");
  args.option("tokenizer", "NAME", "as avey train --tokenizer (default: the config's, else p50k)");
  args.option("device", "cpu|cuda|auto", "where to train", "auto");
  args.option("eval-points", "N", "validation losses along each run (and checkpoints to resume from)", "10");
  args.option("eval-batches", "N", "validation batches at each of those points (as avey train)");
  args.option("final-eval-batches", "N", "batches of the final avey eval (0: the whole validation set)", "0");
  args.option("grad-stats", "N", "as avey train --grad-stats (grad_stats.jsonl in each run)");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("budget") || !args.given("out")) throw UsageError("avey sweep: --budget and --out are required");
  const int64_t budget = args.integer("budget"), seeds = args.integer("seeds"), points = args.integer("eval-points");
  if (budget < 1 || seeds < 1 || points < 1)
    throw UsageError("avey sweep: --budget, --seeds and --eval-points must be at least 1");
  const std::string dir = args.str("out"), base_config = args.str("config");

  // Flags every run shares; the base's resolved settings.
  std::vector<std::string> shared;
  for (const char* flag : {"data", "tokenizer", "eval-batches", "grad-stats"})
    if (args.given(flag)) shared.insert(shared.end(), {std::string("--") + flag, args.str(flag)});
  const nlohmann::json base_keys = avey::config_keys(base_config);
  avey::Config base = avey::load_config(base_config);
  if (base.is_encoder()) throw UsageError("avey sweep: the paper's ablations are the decoder's; " + base_config + " is avey-b");
  std::vector<std::string> base_flags = {"--config", base_config};
  base_flags.insert(base_flags.end(), shared.begin(), shared.end());
  const TrainSettings base_settings = TrainSettings::of_train_flags(base_flags);
  base.seq_len = base_settings.integer("seq-len");  // the variants' T x 2 doubles the T trained
  const int64_t first_seed = base_settings.integer("seed");

  const std::vector<Variant> variants = chosen_variants(args.str("variants"), base);
  nlohmann::json names = nlohmann::json::array();
  for (const Variant& v : variants) names.push_back(v.name);
  const nlohmann::json sweep = {{"config_file", base_config}, {"config", base_keys}, {"variants", names},
                                {"budget", budget},           {"seeds", seeds},     {"data", base_settings.text("data")},
                                {"tokenizer", base_settings.text("tokenizer")}};
  fs::create_directories(dir + "/configs");
  if (fs::exists(dir + "/sweep.json")) {
    const nlohmann::json before = read_json_object(dir + "/sweep.json");
    for (auto it = sweep.begin(); it != sweep.end(); ++it)
      if (before.value(it.key(), nlohmann::json()) != it.value())
        throw UsageError(fmt::format("avey sweep: {} holds a sweep with another {} ({}); choose another --out", dir,
                                     it.key(), before.value(it.key(), nlohmann::json()).dump()));
  } else {
    engine::write_file_atomic(dir + "/sweep.json", sweep.dump(2) + "\n");
  }

  // Every variant's config and step count, checked before anything trains.
  std::vector<Planned> plan;
  for (const Variant& v : variants) {
    nlohmann::json keys = base_keys;
    for (auto it = v.overrides.begin(); it != v.overrides.end(); ++it) keys[it.key()] = it.value();
    const std::string config = fs::absolute(dir + "/configs/" + v.name + ".json").lexically_normal().string();
    int64_t params = 0;
    try {
      params = avey::Config::from_json(keys, "variant " + v.name).param_count();
    } catch (const std::invalid_argument& e) {
      throw UsageError(fmt::format("avey sweep: {}", e.what()));
    }
    engine::write_file_atomic(config, keys.dump(2) + "\n");
    std::vector<std::string> flags = {"--config", config};
    flags.insert(flags.end(), shared.begin(), shared.end());
    Planned p{v, config, params, 0, 0, TrainSettings::of_train_flags(flags), {}};
    const TrainSettings& s = p.settings;
    p.tokens_per_step = s.integer("batch-size") * s.integer("seq-len") * s.integer("grad-accum");
    p.steps = budget / p.tokens_per_step;
    if (p.steps < 1)
      throw UsageError(fmt::format("avey sweep: --budget {} is less than one step of variant {} ({} tokens)", budget,
                                   v.name, p.tokens_per_step));
    plan.push_back(std::move(p));
  }

  const std::string device = args.str("device");
  int64_t done = 0;
  const int64_t total = int64_t(plan.size()) * seeds;
  for (Planned& p : plan) {
    for (int64_t i = 0; i < seeds; ++i) {
      const int64_t seed = first_seed + i;
      const std::string run = fmt::format("{}/runs/{}/seed-{}", dir, p.variant.name, seed);
      const std::optional<std::string> latest = fs::exists(run) ? latest_checkpoint(run) : std::nullopt;
      const bool finished = latest && step_of_folder(fs::path(*latest).filename().string()) == p.steps;
      fmt::print("sweep [{}/{}] {} seed {}: {}\n", ++done, total, p.variant.name, seed,
                 finished ? "trained (skipped)" : fmt::format("{} steps of {} tokens -> {}", p.steps, p.tokens_per_step, run));
      if (!finished) {
        const int64_t every = std::max<int64_t>(1, p.steps / points);
        std::vector<std::string> train = {"train", "--config", p.config, "--seed", std::to_string(seed)};
        train.insert(train.end(), shared.begin(), shared.end());
        train.insert(train.end(), {"--max-steps", std::to_string(p.steps), "--eval-every", std::to_string(every),
                                   "--save-every", std::to_string(every), "--keep-last", "1", "--sample-every", "0",
                                   "--device", device, "--out", run});
        if (fs::exists(run + "/run.json")) train.push_back("--resume");
        const int code = run_avey(train);
        if (code != 0)
          throw std::runtime_error(fmt::format("avey train of {} seed {} stopped (exit {}): rerun the sweep to continue "
                                               "it from its last checkpoint",
                                               p.variant.name, seed, code));
      }
      const std::string eval = run + "/eval.json";
      const bool evaluated = fs::exists(eval) && read_json_object(eval).value("step", int64_t(-1)) == p.steps;
      if (!evaluated) {
        const TrainSettings& s = p.settings;
        std::vector<std::string> ev = {"eval",         "--checkpoint", run,
                                       "--json",       "--device",     device,
                                       "--batch-size", std::to_string(s.integer("batch-size")),
                                       "--seq-len",    std::to_string(s.integer("seq-len")),
                                       "--max-batches", args.str("final-eval-batches")};
        if (!s.text("data").empty()) ev.insert(ev.end(), {"--data", s.text("data")});
        const int code = run_avey(ev, eval + ".tmp");
        if (code != 0) throw std::runtime_error(fmt::format("avey eval of {} failed (exit {})", run, code));
        fs::rename(eval + ".tmp", eval);
      }
      p.runs.push_back(read_run(run, seed));
    }
  }

  const std::string md = results_markdown(plan, sweep);
  engine::write_file_atomic(dir + "/results.md", md);
  engine::write_file_atomic(dir + "/results.json", results_json(plan, sweep).dump(2) + "\n");
  plot_curves(dir + "/curves.svg", plan);
  fmt::print("wrote {}/results.md, results.json, curves.svg\n\n{}", dir, md);
  return 0;
}

const RegisterCommand reg{{"sweep", "train variants (the paper's ablations) under one budget; their table", run_sweep}};

}  // namespace
