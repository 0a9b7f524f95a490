// Config files that define runs (training keys, their precedence, rejection), the gradient study
// over training (avey train --grad-stats, avey plot) and avey sweep (results, resumability).
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "avey/config.h"
#include "cli/ablations.h"
#include "cli/grad_stats.h"
#include "cli/train_settings.h"
#include "cli_testing.h"

using namespace cli_testing;

namespace {

// `avey ARGS` in dir (avey alone would also name the model's namespace)
Result cli(const fs::path& dir, const std::string& args) { return cli_testing::avey(dir, args); }

// Well-formed XML, as far as an SVG writer can get it wrong: every element closed, in order, one root.
bool well_formed(const std::string& xml) {
  std::vector<std::string> open;
  int roots = 0;
  for (size_t i = xml.find('<'); i != std::string::npos; i = xml.find('<', i + 1)) {
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return false;
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return false;
      open.pop_back();
      continue;
    }
    if (open.empty()) ++roots;
    if (tag.back() != '/') open.push_back(tag.substr(0, tag.find_first_of(" \n")));
  }
  return open.empty() && roots == 1;
}

std::vector<nlohmann::json> jsonl(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The tiny model of cli_testing with training keys.
fs::path write_base(const fs::path& dir) {
  setup_run_inputs(dir);
  std::ofstream(dir / "base.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 2, "split_size": 8, "top_k": 2,
    "tokenizer": "bytes", "seq_len": 32, "batch_size": 2, "eval_batches": 1, "lr": 0.002})";
  return dir / "base.json";
}

// `avey train` of that model on the small text, on the CPU, with more flags, into dir/run.
Result train_base(const fs::path& dir, const std::string& flags) {
  write_base(dir);
  return cli(dir, "train --config base.json --data text.txt --device cpu --sample-every 0 --out run " + flags);
}

}  // namespace

TEST_CASE("a config file's training keys: flag default < file < flag") {
  const fs::path dir = scratch("train-keys");
  std::ofstream(dir / "c.toml") << "d_embed = 16\nseq_len = 48\nlr = 0.005\nmax_steps = 7\nschedule = \"constant\"\n"
                                   "data = \"text.txt\"\n";
  const std::string c = (dir / "c.toml").string();
  const TrainSettings file = TrainSettings::of_train_flags({"--config", c});
  CHECK(file.integer("seq-len") == 48);
  CHECK(file.real("lr") == 0.005);
  CHECK(file.integer("max-steps") == 7);
  CHECK(file.text("schedule") == "constant");
  CHECK(file.text("data") == (dir / "text.txt").string());  // relative to the file's folder
  CHECK(file.integer("batch-size") == 4);                   // not in the file: the flag's default
  CHECK(file.chosen("lr"));
  CHECK_FALSE(file.chosen("batch-size"));
  CHECK(file.from_file() == nlohmann::json::array({"max-steps", "seq-len", "lr", "schedule", "data"}));
  const TrainSettings flags = TrainSettings::of_train_flags({"--config", c, "--seq-len", "64", "--schedule", "cosine"});
  CHECK(flags.integer("seq-len") == 64);
  CHECK(flags.text("schedule") == "cosine");
  CHECK(flags.real("lr") == 0.005);
  // a preset names no training keys: every flag keeps its default
  CHECK(TrainSettings::of_train_flags({"--config", "tiny"}).integer("seq-len") == 256);
  // every training key a config may hold is a flag of avey train
  Args args("train", "");
  TrainSettings::declare(args);
  for (const std::string& key : avey::training_keys()) {
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    CHECK_NOTHROW(args.given(flag));  // an undeclared flag throws
  }
}

TEST_CASE("avey train applies the file's keys, records them, and rejects a bad key in one line") {
  const fs::path dir = scratch("train-keys-cli");
  write_base(dir);
  std::ofstream(dir / "steps.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2,
    "tokenizer": "bytes", "seq_len": 24, "batch_size": 3, "max_steps": 3, "eval_every": 0, "sample_every": 0})";
  Result r = cli(dir, "train --config steps.json --data text.txt --device cpu --batch-size 2 --out run");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const nlohmann::json run = nlohmann::json::parse(slurp(dir / "run/run.json"));
  CHECK(run["settings"]["seq-len"] == 24);     // file
  CHECK(run["settings"]["batch-size"] == 2);    // flag over file
  CHECK(run["settings"]["max-steps"] == 3);     // file
  CHECK(run["settings"]["tokenizer"] == "bytes");
  // batch-size: the flag's, so not the file's
  CHECK(run["from_config"] == nlohmann::json::array({"max-steps", "seq-len", "tokenizer", "eval-every", "sample-every"}));
  CHECK(jsonl(dir / "run/metrics.jsonl").size() == 3);

  std::ofstream(dir / "typo.json") << R"({"d_embed": 16, "max_step": 3})";
  r = cli(dir, "train --config typo.json --out typo");
  CHECK(r.code != 0);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("typo.json: key 'max_step': unknown key") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "typo/run.json"));
  std::ofstream(dir / "type.toml") << "d_embed = 16\nwarmup = 1.5\n";
  r = cli(dir, "train --config type.toml --out type");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: type.toml: key 'warmup': expected an integer, got 1.5\n");
}

TEST_CASE("--resume of a run whose run.json predates --grad-stats") {
  const fs::path dir = scratch("resume-before-grad-stats");
  Result r = train_base(dir, "--max-steps 4 --stop-at 2");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  nlohmann::json run = nlohmann::json::parse(slurp(dir / "run/run.json"));
  run["settings"].erase("grad-stats");
  std::ofstream(dir / "run/run.json") << run.dump(2);
  r = cli(dir, "train --out run --resume");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(jsonl(dir / "run/metrics.jsonl").size() == 4);
  CHECK_FALSE(fs::exists(dir / "run/grad_stats.jsonl"));
}

TEST_CASE("block_of reads the block of a parameter's name") {
  CHECK(block_of("blocks.3.enricher.weight") == 3);
  CHECK(block_of("layers.12.ranker_norm.weight") == 12);
  CHECK(block_of("wte.weight") == std::nullopt);
  CHECK(block_of("blocks.x.weight") == std::nullopt);
}

TEST_CASE("avey train --grad-stats records norms per tensor and block, avey plot draws them") {
  const fs::path dir = scratch("grad-stats");
  Result r = train_base(dir, "--max-steps 6 --grad-stats 2 --eval-every 3");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::vector<nlohmann::json> stats = jsonl(dir / "run/grad_stats.jsonl");
  REQUIRE(stats.size() == 4);  // steps 1, 2, 4, 6
  CHECK(stats[0]["step"] == 1);
  CHECK(stats[3]["step"] == 6);
  for (const nlohmann::json& line : stats) {
    REQUIRE(line["blocks"].size() == 2);
    std::vector<double> g2(2, 0.0);
    for (const nlohmann::json& t : line["tensors"]) {
      for (const char* f : {"grad_norm", "weight_norm", "update_ratio"}) CHECK(std::isfinite(t[f].get<double>()));
      CHECK(t["weight_norm"].get<double>() > 0);
      if (t["block"].is_number()) g2[t["block"].get<size_t>()] += std::pow(t["grad_norm"].get<double>(), 2);
    }
    for (size_t b = 0; b < 2; ++b) {
      const nlohmann::json& blk = line["blocks"][b];
      CHECK(blk["block"] == b);
      CHECK(blk["grad_norm"].get<double>() == doctest::Approx(std::sqrt(g2[b])).epsilon(1e-12));
      CHECK(blk["output_grad_norm"].get<double>() > 0);
      // AdamW moves every weight by about lr per element: a small, non-zero share of the norm
      CHECK(blk["update_ratio"].get<double>() > 0);
      CHECK(blk["update_ratio"].get<double>() < 0.1);
    }
  }
  // the first step's gradients, as avey grads computes them for the same batch, would need the
  // loader's batch; the norms are checked against their sum instead (above) and against the
  // metrics' global gradient norm, which is over every tensor
  const nlohmann::json first = jsonl(dir / "run/metrics.jsonl")[0];
  double all = 0;
  for (const nlohmann::json& t : stats[0]["tensors"]) all += std::pow(t["grad_norm"].get<double>(), 2);
  CHECK(std::sqrt(all) == doctest::Approx(first["grad_norm"].get<double>()).epsilon(1e-5));

  r = cli(dir, "plot --run run --out plots");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  for (const char* f : {"loss.svg", "run-grad-norm.svg", "run-update-ratio.svg", "run-output-grad.svg", "run-grad-curves.svg"}) {
    INFO(f);
    const std::string svg = slurp(dir / "plots" / f);
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(well_formed(svg));
  }
  // the heatmap: one cell per block and recorded step
  const std::string map = slurp(dir / "plots/run-grad-norm.svg");
  size_t cells = 0;
  for (size_t i = map.find("stroke-width=\"1.5\""); i != std::string::npos; i = map.find("stroke-width=\"1.5\"", i + 1)) ++cells;
  CHECK(cells == 2 * 4);
  CHECK(cli(dir, "plot --run nowhere --out p").code == 2);
}

TEST_CASE("the paper's variants are valid configs of a base, each named once") {
  const avey::Config base = avey::load_config("tiny");
  const std::vector<Variant> v = paper_variants(base);
  REQUIRE(v.front().name == "base");
  std::set<std::string> names;
  for (const Variant& x : v) {
    INFO(x.name);
    names.insert(x.name);
    nlohmann::json keys = {{"preset", "tiny"}};
    for (auto it = x.overrides.begin(); it != x.overrides.end(); ++it) keys[it.key()] = it.value();
    CHECK_NOTHROW(avey::Config::from_json(keys));
  }
  CHECK(names.size() == v.size());
  CHECK(names.count("no-ranker"));
  CHECK(names.count("attention"));
  CHECK(names.count("constant-lr"));
}

TEST_CASE("avey sweep writes one row per variant, and a killed sweep continues where it stopped") {
  const fs::path dir = scratch("sweep");
  write_base(dir);
  const std::string sweep = "sweep --config base.json --variants enricher-none --data text.txt --device cpu "
                            "--budget 12800 --seeds 2 --eval-points 10 --out ";
  // Stopped (SIGTERM) once the base's first run has a checkpoint, then run again.
  const pid_t pid = start_avey(dir, sweep + "killed");
  const fs::path first = dir / "killed/runs/base/seed-11";
  for (int i = 0; i < 6000 && !fs::exists(first / "latest"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGTERM);
  CHECK(wait_for(pid) == 1);
  CHECK(slurp(dir / "bg.txt").find("rerun the sweep to continue") != std::string::npos);
  REQUIRE(fs::exists(first / "latest"));
  CHECK_FALSE(fs::exists(dir / "killed/results.json"));
  Result r = cli(dir, sweep + "killed");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("resuming") != std::string::npos);
  // A whole sweep in one go computes the same numbers.
  r = cli(dir, sweep + "whole");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const nlohmann::json killed = nlohmann::json::parse(slurp(dir / "killed/results.json"));
  const nlohmann::json whole = nlohmann::json::parse(slurp(dir / "whole/results.json"));
  REQUIRE(whole["rows"].size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json &a = killed["rows"][i], &b = whole["rows"][i];
    CHECK(a["val_loss"] == b["val_loss"]);
    CHECK(a["bpb"] == b["bpb"]);
    CHECK(a["delta_val_loss"] == b["delta_val_loss"]);
  }
  const nlohmann::json& base = whole["rows"][0];
  const nlohmann::json& none = whole["rows"][1];
  CHECK(base["variant"] == "base");
  CHECK(none["variant"] == "enricher-none");
  CHECK(none["paper_kept"] == "ReLU^2");
  CHECK(base["steps"] == 200);  // 12800 / (2 x 32)
  CHECK(base["params"] == avey::load_config((dir / "base.json").string()).param_count());
  CHECK(base["delta_val_loss"] == 0.0);
  for (const nlohmann::json& row : whole["rows"]) {
    REQUIRE(row["seeds"].size() == 2);
    CHECK(row["seeds"][0]["seed"] == 11);
    CHECK(row["seeds"][1]["seed"] == 12);
    const double l0 = row["seeds"][0]["val_loss"], l1 = row["seeds"][1]["val_loss"];
    CHECK(row["val_loss"].get<double>() == doctest::Approx((l0 + l1) / 2));
    CHECK(row["val_loss_std"].get<double>() == doctest::Approx(std::abs(l0 - l1) / std::sqrt(2.0)));
    CHECK(row["val_loss"].get<double>() < std::log(260.0));  // it learned something
    CHECK(row["bpb"].get<double>() > 0);
    CHECK(row["tok_s"].get<double>() > 0);
  }
  // delta: paired by seed
  const double d0 = none["seeds"][0]["val_loss"].get<double>() - base["seeds"][0]["val_loss"].get<double>();
  const double d1 = none["seeds"][1]["val_loss"].get<double>() - base["seeds"][1]["val_loss"].get<double>();
  CHECK(none["delta_val_loss"].get<double>() == doctest::Approx((d0 + d1) / 2));
  const std::string md = slurp(dir / "whole/results.md");
  CHECK(md.find("| base | the paper's design |") != std::string::npos);
  CHECK(md.find("| enricher-none | enricher activation (App. B) | ReLU^2 |") != std::string::npos);
  const std::string svg = slurp(dir / "whole/curves.svg");
  CHECK(well_formed(svg));
  CHECK(svg.find("enricher-none") != std::string::npos);
  // A finished sweep reruns without training; another budget into its folder is refused.
  r = cli(dir, sweep + "whole");
  CHECK(r.code == 0);
  CHECK(r.out.find("trained (skipped)") != std::string::npos);
  CHECK(r.out.find("saved ") == std::string::npos);
  r = cli(dir, "sweep --config base.json --variants enricher-none --data text.txt --budget 6400 --out whole");
  CHECK(r.code == 2);
  CHECK(r.err.find("holds a sweep with another budget") != std::string::npos);
  r = cli(dir, "sweep --config base.json --variants enricher-nothing --budget 6400 --out x");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  r = cli(dir, "sweep --config base.json --variants no-ranker --budget 10 --out y");
  CHECK(r.err.find("less than one step") != std::string::npos);
}
