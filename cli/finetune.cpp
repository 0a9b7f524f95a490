// `avey finetune`: Avey-B with a sequence or token classification head (avey/heads.h) on a task
// folder (data/task_file.h: train.jsonl, val.jsonl, test.jsonl), for every learning rate of a grid
// and every seed, then a table of mean +- standard deviation over the seeds (docs/finetune.md).
//
// The reference's recipe (rimads/avey-b EncodEval, transformers' Trainer) by default: AdamW betas
// (0.9, 0.95), eps 1e-5, weight decay 0.1 on every tensor but biases and norm gains, a linear
// schedule with ceil(10%) warm-up steps down to 0, batches of 32 examples (padded with
// end-of-text to the longest, labels -100 there; the sequence head's mean runs over the padded
// length, as the reference's does), 1 epoch, global gradient-norm clip 1.0. Per run: the head is
// initialised from the seed (Xavier-normal weights, zero biases), the encoder loaded from --init,
// the data shuffled by the seed each epoch. Evaluation runs each example on its own rows (batches
// of examples of one length: no padding, so the scores are those `avey predict` gives).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/finetuned.h"
#include "cli/run_data.h"
#include "engine/device_info.h"
#include "data/progress.h"
#include "data/task_file.h"
#include "data/task_metrics.h"
#include "engine/atomic_file.h"
#include "engine/random.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"

namespace fs = std::filesystem;
using engine::Tensor;

namespace {

struct TaskData {
  data::TaskKind kind;
  std::vector<std::string> labels;
  std::vector<data::EncodedExample> train, val, test;
};

// [n, T] ids (end-of-text after each example up to the longest) and the labels: i32 [n] or [n, T].
std::pair<Tensor, Tensor> padded_batch(const std::vector<data::EncodedExample>& ex, const std::vector<size_t>& idx,
                                       data::TaskKind kind, int32_t pad) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, ex[i].ids.size());
  std::vector<int32_t> ids, labels;
  for (size_t i : idx) {
    std::vector<int32_t> row = ex[i].ids;
    row.resize(T, pad);
    ids.insert(ids.end(), row.begin(), row.end());
    if (kind == data::TaskKind::Sequence) {
      labels.push_back(ex[i].label);
    } else {
      std::vector<int32_t> lab = ex[i].token_labels;
      lab.resize(T, -100);
      labels.insert(labels.end(), lab.begin(), lab.end());
    }
  }
  const int64_t n = int64_t(idx.size());
  return {Tensor::from(ids, {n, int64_t(T)}),
          kind == data::TaskKind::Sequence ? Tensor::from(labels, {n}) : Tensor::from(labels, {n, int64_t(T)})};
}

TaskData load_task(const std::string& dir, const data::Tokenizer& tok, int64_t max_len) {
  TaskData t;
  const data::RawTask train = data::read_task_file(dir + "/train.jsonl");
  t.kind = train.kind;
  t.labels = data::task_labels(train);
  if (t.kind == data::TaskKind::Sequence && t.labels.size() < 2)
    throw std::runtime_error(dir + "/train.jsonl: every example has the label '" + t.labels[0] + "' (nothing to learn)");
  t.train = data::encode_task(train, t.labels, tok, max_len, dir + "/train.jsonl");
  for (auto [name, into] : {std::pair{"val", &t.val}, std::pair{"test", &t.test}}) {
    const std::string path = dir + "/" + name + ".jsonl";
    if (!fs::exists(path)) continue;
    const data::RawTask split = data::read_task_file(path);
    if (split.kind != t.kind)
      throw std::runtime_error(fmt::format("{} holds {} examples but train.jsonl {}", path, data::name_of(split.kind), data::name_of(t.kind)));
    *into = data::encode_task(split, t.labels, tok, max_len, path);
  }
  return t;
}

// What a predictor that always says the training set's most frequent label scores (for token
// tasks: the most frequent token label everywhere).
data::TaskScores majority_scores(const TaskData& t, const std::vector<data::EncodedExample>& ex) {
  std::vector<int64_t> count(t.labels.size(), 0);
  for (const auto& e : t.train) {
    if (t.kind == data::TaskKind::Sequence) ++count[size_t(e.label)];
    for (int32_t y : e.token_labels)
      if (y >= 0) ++count[size_t(y)];
  }
  const int32_t top = int32_t(std::max_element(count.begin(), count.end()) - count.begin());
  std::vector<std::vector<int32_t>> pred;
  for (const auto& e : ex) pred.push_back(std::vector<int32_t>(t.kind == data::TaskKind::Sequence ? 1 : e.ids.size(), top));
  return data::score_task(t.kind, t.labels, ex, pred);
}

struct RunResult {
  double lr = 0;
  int64_t seed = 0;
  data::TaskScores val, test;
  double seconds = 0;
};

std::string mean_std(const std::vector<double>& v) {
  if (v.empty()) return "-";
  const double m = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  if (v.size() == 1) return fmt::format("{:.2f}", 100 * m);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return fmt::format("{:.2f} ± {:.2f}", 100 * m, 100 * std::sqrt(ss / double(v.size() - 1)));  // sample std
}

// The markdown table: one row per learning rate (mean ± std over the seeds, in %): the validation
// score the grid is chosen by, then every metric of the test set (of the validation set when the
// task has no test set); last the majority baseline.
std::string results_table(const TaskData& t, const std::vector<RunResult>& runs, const data::TaskScores& base_val,
                          const data::TaskScores& base_test) {
  const bool has_test = !t.test.empty();
  auto scores = [&](const RunResult& r) -> const data::TaskScores& { return has_test ? r.test : r.val; };
  const std::string split = has_test ? "test" : "val", primary = scores(runs.at(0)).primary;
  std::vector<std::string> metrics;
  for (const auto& [m, v] : scores(runs[0]).metrics) metrics.push_back(m);
  std::string out = fmt::format("| learning rate | seeds | val {} |", data::metric_title(primary)), rule = "|---|---|---|";
  for (const auto& m : metrics) out += fmt::format(" {} {} |", split, data::metric_title(m)), rule += "---|";
  out += "\n" + rule + "\n";
  std::map<double, std::vector<const RunResult*>> by_lr;
  for (const RunResult& r : runs) by_lr[r.lr].push_back(&r);
  for (const auto& [lr, rs] : by_lr) {
    std::vector<double> val;
    for (auto* r : rs)
      if (!t.val.empty()) val.push_back(r->val.metrics.at(primary));
    out += fmt::format("| {:g} | {} | {} |", lr, rs.size(), mean_std(val));
    for (const auto& m : metrics) {
      std::vector<double> v;
      for (auto* r : rs) v.push_back(scores(*r).metrics.at(m));
      out += fmt::format(" {} |", mean_std(v));
    }
    out += "\n";
  }
  out += fmt::format("| majority baseline | - | {} |", t.val.empty() ? "-" : mean_std({base_val.metrics.at(primary)}));
  for (const auto& m : metrics) out += fmt::format(" {} |", mean_std({(has_test ? base_test : base_val).metrics.at(m)}));
  return out + "\n";
}

int run_finetune(int argc, char** argv) {
  Args args("finetune", "Fine-tune Avey-B with a classification head on a task folder (train/val/test.jsonl): "
                        "a learning-rate grid and seeds, a table of mean ± std.");
  args.option("task", "DIR", "task folder: train.jsonl, val.jsonl, test.jsonl (docs/finetune.md; avey task makes some)");
  args.option("init", "DIR", "pretrained Avey-B: an avey train run folder or a fine-tuned folder (its encoder)");
  args.option("config", "NAME|FILE", "without --init: an Avey-B config to start from scratch", "avey-b-tiny");
  args.option("lr", "LIST", "peak learning rates (the reference's grid: 2e-5,6e-5,1e-4,5e-4,1e-3,2e-3)", "1e-4");
  args.option("seeds", "LIST", "seeds per learning rate", "0");
  args.option("epochs", "N", "passes over the training set", "1");
  args.option("batch-size", "B", "examples per optimizer step", "32");
  args.option("micro-batch", "N", "examples per forward pass (gradients accumulate over a step)", "32");
  args.option("tokenizer", "p50k|bytes", "the text's tokenizer (default: the --init folder's, else p50k)");
  args.option("max-len", "T", "tokens per example, end-of-text included (default: the config's seq_len)");
  args.option("weight-decay", "X", "AdamW weight decay (biases and norm gains take none)", "0.1");
  args.option("warmup-ratio", "X", "share of the steps warming up linearly", "0.1");
  args.option("clip", "X", "global gradient-norm clip (0: off)", "1.0");
  args.option("max-train", "N", "use only the first N training examples (0: all)", "0");
  args.option("device", "cpu|cuda|auto", "where to train", "auto");
  args.option("precision", "fp32|bf16|auto", "bf16 mixed precision (GPU) or fp32", "auto");
  args.option("save", "best|all|none", "fine-tuned folders to write: the best run by validation score, every run, none", "best");
  args.option("out", "DIR", "results folder: results.md, results.json, runs.jsonl, best/ (the reference's layout)");
  if (!args.parse(argc, argv)) return 0;
  if (!args.has("task") || !args.has("out")) throw UsageError("avey finetune: --task DIR and --out DIR are required");
  const std::string out = args.str("out"), save = args.str("save");
  if (save != "best" && save != "all" && save != "none") throw UsageError("avey finetune: --save must be best, all or none");
  if (fs::exists(out + "/results.json") || fs::exists(out + "/runs.jsonl"))
    throw UsageError("avey finetune: " + out + " already holds results (runs.jsonl); choose another --out");
  std::vector<double> lrs;
  for (const std::string& s : args.list("lr")) {
    try {
      lrs.push_back(std::stod(s));
    } catch (const std::exception&) {
      throw UsageError("avey finetune: --lr takes numbers, got '" + s + "'");
    }
    if (!(lrs.back() > 0)) throw UsageError("avey finetune: learning rates must be > 0, got " + s);
  }
  const std::vector<int64_t> seeds = args.integers("seeds");
  const int64_t epochs = args.integer("epochs"), B = args.integer("batch-size"), micro = std::min(args.integer("micro-batch"), B);
  if (lrs.empty() || seeds.empty() || epochs < 1 || B < 1 || micro < 1)
    throw UsageError("avey finetune: learning rates, seeds, epochs and batch sizes must be given and positive");

  std::optional<ModelFolder> init;
  if (args.has("init")) init = open_model_folder(args.str("init"));
  avey::Config cfg = init ? pretrained_config(*init) : avey::load_config(args.str("config"));
  if (!cfg.is_encoder()) throw UsageError("avey finetune: heads sit on Avey-B; --config must be an avey-b model");
  const int64_t max_len = args.has("max-len") ? args.integer("max-len") : cfg.seq_len;
  if (max_len < 2) throw UsageError("avey finetune: --max-len must be >= 2");
  const std::string tok_name = args.has("tokenizer") ? args.str("tokenizer")
                               : init && !init->spec.tokenizer.empty() ? init->spec.tokenizer
                                                                       : "p50k";
  const std::unique_ptr<data::Tokenizer> tok = tokenizer_for(tok_name, cfg);
  TaskData task = load_task(args.str("task"), *tok, max_len);
  if (args.integer("max-train") > 0 && int64_t(task.train.size()) > args.integer("max-train"))
    task.train.resize(size_t(args.integer("max-train")));
  cfg.head = task.kind == data::TaskKind::Sequence ? "sequence" : "token";
  cfg.num_labels = int64_t(task.labels.size());
  cfg.seq_len = max_len;
  cfg.validate();
  const engine::Device device = resolve_device(args.str("device"));
  const engine::DType dtype = resolve_precision(args.str("precision"), device);
  const int64_t steps_per_epoch = (int64_t(task.train.size()) + B - 1) / B, steps = steps_per_epoch * epochs;
  const int64_t warmup = int64_t(std::ceil(args.real("warmup-ratio") * double(steps)));
  fmt::print("task {} ({}): {} labels, {} train / {} val / {} test examples, max {} tokens\n", args.str("task"),
             data::name_of(task.kind), task.labels.size(), task.train.size(), task.val.size(), task.test.size(), max_len);
  fmt::print("model {} + {} head: {} parameters on {} in {}; {} steps of {} ({} warm-up), {} runs\n",
             args.has("init") ? args.str("init") : args.str("config"), cfg.head, cfg.param_count(), engine::device_name(device),
             engine::name_of(dtype), steps, B, warmup, lrs.size() * seeds.size());
  fs::create_directories(out);
  std::ofstream runs_log(out + "/runs.jsonl");

  std::vector<RunResult> results;
  double best_val = -1;
  data::Progress progress("finetune");
  const int64_t total_steps = steps * int64_t(lrs.size() * seeds.size());
  int64_t steps_done = 0;
  for (double lr : lrs)
    for (int64_t seed : seeds) {
      const auto t0 = std::chrono::steady_clock::now();
      avey::Model model(cfg, device, dtype);
      model.init(uint64_t(seed));
      if (init) load_encoder(*init, model);
      std::vector<optim::Segment> segs;
      for (const avey::Param& p : model.params()) {  // transformers' Trainer: no decay on biases and norms
        optim::Segment s = optim::segment_of(p.name, p.value, model.flat_params());
        s.decay = p.name.find("bias") == std::string::npos && p.name.find("norm") == std::string::npos;
        segs.push_back(s);
      }
      optim::AdamW opt(model.flat_params(), segs, optim::AdamWConfig{0.9, 0.95, 1e-5, args.real("weight-decay")});
      optim::Schedule schedule{optim::ScheduleKind::Linear, lr, warmup, steps, 0.0};
      schedule.validate();
      engine::Rng rng{uint64_t(seed)};
      std::vector<size_t> order(task.train.size());
      std::iota(order.begin(), order.end(), 0);
      int64_t step = 0, tokens = 0;
      double loss_avg = NAN;
      for (int64_t epoch = 0; epoch < epochs; ++epoch) {
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
        for (size_t at = 0; at < order.size(); at += size_t(B), ++step) {
          const size_t end = std::min(order.size(), at + size_t(B));
          model.zero_grad();
          double loss_sum = 0;
          for (size_t m = at; m < end; m += size_t(micro)) {
            const std::vector<size_t> idx(order.begin() + long(m), order.begin() + long(std::min(end, m + size_t(micro))));
            auto [ids, labels] = padded_batch(task.train, idx, task.kind, tok->eot());
            Tensor loss = model.task_loss(ids, labels);
            const double share = double(idx.size()) / double(end - at);  // the step's loss: a mean over its examples
            engine::scale(loss, share).backward();
            loss_sum += share * loss.item();
            tokens += ids.numel();
          }
          engine::Tensor& grads = model.flat_grads();
          const optim::ClipResult clip = optim::clip_grad_norm(grads, args.real("clip"));
          if (!std::isfinite(loss_sum) || !std::isfinite(clip.norm()))
            throw std::runtime_error(fmt::format("lr {:g} seed {}: the loss or gradient became non-finite at step {}", lr, seed, step + 1));
          opt.step(grads, schedule.lr_at(step), clip, model.working_params());
          loss_avg = std::isnan(loss_avg) ? loss_sum : 0.95 * loss_avg + 0.05 * loss_sum;
          ++steps_done;
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          progress.update(double(steps_done) / double(total_steps),
                          fmt::format("lr {:g} seed {} | step {}/{} | loss {:.4f} | {:.0f} tok/s", lr, seed, step + 1, steps,
                                      loss_avg, double(tokens) / secs));
        }
      }
      RunResult r{lr, seed, {}, {}, 0};
      const int64_t eval_batch = std::max<int64_t>(B, 32);
      if (!task.val.empty())
        r.val = data::score_task(task.kind, task.labels, task.val, predict_examples(model, task.val, eval_batch, "validation"));
      if (!task.test.empty())
        r.test = data::score_task(task.kind, task.labels, task.test, predict_examples(model, task.test, eval_batch, "test"));
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      nlohmann::json line{{"lr", lr}, {"seed", seed}, {"seconds", r.seconds}, {"train_loss", loss_avg},
                          {"val", r.val.metrics}, {"test", r.test.metrics}};
      runs_log << line.dump() << "\n" << std::flush;
      std::string summary;
      for (const auto& [split, s] : {std::pair{"val", &r.val}, std::pair{"test", &r.test}})
        for (const auto& [m, v] : s->metrics) summary += fmt::format(" | {} {} {:.2f}%", split, data::metric_title(m), 100 * v);
      fmt::print("lr {:g} seed {}: train loss {:.4f}{} ({})\n", lr, seed, loss_avg, summary, data::format_duration(r.seconds));
      std::fflush(stdout);
      const FinetunedInfo info{model.config(), task.labels, task.kind, tok_name};
      const data::TaskScores& chooser = task.val.empty() ? r.test : r.val;
      const double score = chooser.metrics.empty() ? 0.0 : chooser.metrics.at(chooser.primary);
      if (save == "all") write_finetuned(fmt::format("{}/lr{:g}-seed{}", out, lr, seed), model, info);
      if (save == "best" && score > best_val) write_finetuned(out + "/best", model, info);
      best_val = std::max(best_val, score);
      results.push_back(std::move(r));
    }
  progress.finish(fmt::format("{} runs", results.size()));

  const data::TaskScores base_val = task.val.empty() ? data::TaskScores{} : majority_scores(task, task.val);
  const data::TaskScores base_test = task.test.empty() ? data::TaskScores{} : majority_scores(task, task.test);
  if (task.test.empty() && task.val.empty()) {
    fmt::print("no val.jsonl or test.jsonl in {}: nothing scored\n", args.str("task"));
    return 0;
  }
  const std::string table = results_table(task, results, base_val, base_test);
  std::string cmd = "avey";
  for (int i = 0; i < argc; ++i) cmd += std::string(" ") + argv[i];
  engine::write_file_atomic(out + "/results.md", fmt::format("`{}`\n\n{}", cmd, table));
  nlohmann::json j{{"command", cmd}, {"labels", task.labels}, {"task_kind", data::name_of(task.kind)},
                   {"majority", {{"val", base_val.metrics}, {"test", base_test.metrics}}}, {"runs", nlohmann::json::array()}};
  for (const RunResult& r : results)
    j["runs"].push_back({{"lr", r.lr}, {"seed", r.seed}, {"val", r.val.metrics}, {"test", r.test.metrics}, {"seconds", r.seconds}});
  engine::write_file_atomic(out + "/results.json", j.dump(1) + "\n");
  fmt::print("\n{}\nwritten: {}/results.md, results.json, runs.jsonl{}\n", table, out,
             save == "best" ? ", best/ (the best run by validation score, the reference's layout)" : "");
  return 0;
}

const RegisterCommand reg{{"finetune", "fine-tune Avey-B with a classification head: LR grid x seeds, mean ± std", run_finetune}};

}  // namespace
