// `avey train`: the training loop.
//
//   for each step: zero the flat gradient buffer; for each of grad_accum micro-batches, the
//   loss (scaled by 1/grad_accum) goes backward into it; clip by the global norm; one AdamW
//   step at the schedule's learning rate. Every step prints a progress line and appends to
//   metrics.jsonl; every --eval-every steps the validation loss, --sample-every a sample,
//   --save-every a checkpoint (and always at the end, with the loss plot).
//
// With no flags it trains the `tiny` preset on the default corpus (Moby Dick) on the best
// device present. --resume continues a run bit-identically from its folder's checkpoint.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "avey/flops.h"
#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/command.h"
#include "cli/evaluate.h"
#include "cli/run_data.h"
#include "cli/sampling.h"
#include "cli/svg_plot.h"
#include "data/progress.h"
#include "engine/device_info.h"
#include "engine/fused_ops.h"
#include "engine/ops.h"
#include "data/masking.h"
#include "optim/clip.h"
#include "optim/schedule.h"

namespace fs = std::filesystem;

namespace {

// The flags that define a run, with their types; saved in train_state.json and reused by --resume.
enum class Kind { Text, Integer, Real };
const std::vector<std::pair<std::string, Kind>> kRunFlags = {
    {"config", Kind::Text},     {"batch-size", Kind::Integer}, {"seq-len", Kind::Integer}, {"grad-accum", Kind::Integer},
    {"lr", Kind::Real},         {"schedule", Kind::Text},      {"warmup", Kind::Integer},  {"max-steps", Kind::Integer},
    {"weight-decay", Kind::Real}, {"clip", Kind::Real},        {"seed", Kind::Integer},    {"tokenizer", Kind::Text},
    {"data", Kind::Text},       {"precision", Kind::Text}};

nlohmann::json typed(const Args& args, const std::string& flag, Kind kind) {
  switch (kind) {
    case Kind::Integer: return args.integer(flag);
    case Kind::Real: return args.real(flag);
    case Kind::Text: break;
  }
  return args.str(flag);
}

// An encoder's sample: every fourth id of the opening text masked, and what the model fills in.
void print_fill_mask(avey::Model& model, const std::vector<int32_t>& opening, const data::Tokenizer& tok, int64_t step,
                     const std::string& dir) {
  engine::NoGrad no_grad;
  std::vector<int32_t> masked = opening;
  for (size_t i = 3; i < masked.size(); i += 4) masked[i] = int32_t(model.config().mask_id);
  const engine::Tensor logits = model.logits(engine::Tensor::from(masked, {1, int64_t(masked.size())}));
  const std::vector<int32_t> best = engine::row_argmax(engine::reshape(logits, {int64_t(masked.size()), logits.size(-1)}))
                                        .to(engine::Device::CPU)
                                        .to_vector<int32_t>();
  std::string text;
  for (size_t i = 0; i < masked.size(); ++i)
    text += i % 4 == 3 && i >= 3 ? fmt::format("[{} -> {}]", tok.decode({opening[i]}), tok.decode({best[i]}))
                                 : tok.decode({opening[i]});
  fmt::print("--- fill-mask at step {} ([masked -> predicted]) ---\n{}\n---\n", step, text);
  std::ofstream(dir + "/samples.txt", std::ios::app) << fmt::format("=== step {} (fill-mask) ===\n{}\n", step, text);
}

std::vector<optim::Segment> segments_of(avey::Model& model) {
  std::vector<optim::Segment> segs;
  for (const avey::Param& p : model.params()) segs.push_back(optim::segment_of(p.name, p.value, model.flat_params()));
  return segs;
}

void plot_metrics(const std::string& dir) {
  Series train{"train loss", "#1f77b4", {}}, val{"validation loss", "#d62728", {}};
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("loss")) train.points.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
    if (j.contains("val_loss")) val.points.emplace_back(j["step"].get<double>(), j["val_loss"].get<double>());
  }
  write_svg_plot(dir + "/loss.svg", "Avey training", "step", "cross-entropy (nats/token)", {train, val});
}

// Avey-B's pretraining recipe (docs/model.md section 2) for the flags not given: its config's lr
// (7e-4), sequence length and weight decay (0.01), linear warm-up over the first 10% of the steps
// then cosine to 0. (Its AdamW betas 0.95/0.95 and eps 1e-18 are set where the optimizer is made.)
void use_encoder_recipe(nlohmann::json& settings, const Args& args) {
  const avey::Config cfg = avey::load_config(args.str("config"));
  if (!args.given("lr")) settings["lr"] = cfg.lr;
  if (!args.given("weight-decay")) settings["weight-decay"] = cfg.weight_decay;
  if (!args.given("seq-len")) settings["seq-len"] = cfg.seq_len;
  if (!args.given("schedule")) settings["schedule"] = "warmup_cosine";
  if (!args.given("warmup")) settings["warmup"] = settings["max-steps"].get<int64_t>() / 10;
}

int run_train(int argc, char** argv) {
  Args args("train", "Train an Avey model. With no flags: the tiny preset on the default corpus (Moby Dick).");
  args.option("config", "NAME|FILE", "model preset (tiny, small, medium, large) or a .json/.toml file", "tiny");
  args.option("device", "cpu|cuda|auto", "where to train (auto: the GPU when there is one)", "auto");
  args.option("precision", "fp32|bf16|auto", "bf16 mixed precision (GPU) or strict fp32 (auto: bf16 on GPU)", "auto");
  args.option("max-steps", "N", "optimizer steps (the learning-rate schedule spans them)", "120");
  args.option("stop-at", "STEP", "stop after this step with a checkpoint (resume later with --resume)");
  args.option("batch-size", "B", "sequences per micro-batch", "4");
  args.option("seq-len", "T", "tokens per sequence", "256");
  args.option("grad-accum", "N", "micro-batches per optimizer step", "1");
  args.option("lr", "X", "peak learning rate", "1e-3");
  args.option("schedule", "KIND", "cosine (to 10% of peak), constant, or warmup_cosine (to 0)", "cosine");
  args.option("warmup", "N", "linear warm-up steps", "0");
  args.option("weight-decay", "X", "AdamW weight decay on matrices", "0.1");
  args.option("clip", "X", "global gradient-norm clip (0: off)", "1.0");
  args.option("eval-every", "N", "validation loss every N steps (0: only at the end)", "20");
  args.option("eval-batches", "N", "validation batches per evaluation", "8");
  args.option("sample-every", "N", "print a sample every N steps (0: only at the end)", "60");
  args.option("save-every", "N", "checkpoint every N steps (0: only at the end)", "60");
  args.option("out", "DIR", "run folder (checkpoints, metrics.jsonl, loss.svg, samples.txt)", "runs/tiny");
  args.option("seed", "S", "seed for initialisation, data order and samples", "11");
  args.option("tokenizer", "NAME", "p50k, r50k or bytes", "p50k");
  args.option("data", "PATH", "corpus name (moby-dick, research), text/.jsonl file, folder, quoted glob or shards (default: moby-dick)", "");
  args.flag("resume", "continue the run in --out from its last checkpoint");
  if (!args.parse(argc, argv)) return 0;

  const std::string dir = args.str("out");
  const bool resume = args.on("resume");
  nlohmann::json settings;
  if (resume) {
    if (!fs::exists(dir + "/train_state.json")) throw UsageError("avey train: --resume but " + dir + " holds no checkpoint");
    std::ifstream in(dir + "/train_state.json");
    settings = nlohmann::json::parse(in).at("settings");
    for (const auto& [f, kind] : kRunFlags)
      if (args.given(f) && settings.value(f, nlohmann::json()) != typed(args, f, kind))
        throw UsageError(fmt::format("avey train: --{} cannot change on --resume (the run has {})", f,
                                     settings.value(f, nlohmann::json()).dump()));
  } else {
    if (fs::exists(dir + "/train_state.json"))
      throw UsageError("avey train: " + dir + " already holds a run; continue it with --resume or choose another --out");
    for (const auto& [f, kind] : kRunFlags) settings[f] = typed(args, f, kind);
    if (avey::load_config(args.str("config")).is_encoder()) use_encoder_recipe(settings, args);
  }
  auto setting = [&](const std::string& f) { return settings.at(f).get<std::string>(); };
  auto integer = [&](const std::string& f) { return settings.at(f).get<int64_t>(); };
  auto real = [&](const std::string& f) { return settings.at(f).get<double>(); };

  const engine::Device device = resolve_device(args.str("device"));
  const engine::DType dtype = resolve_precision(setting("precision"), device);
  avey::Config cfg = avey::load_config(resume ? dir + "/config.json" : setting("config"));
  const int64_t B = integer("batch-size"), T = integer("seq-len"), accum = integer("grad-accum");
  const int64_t max_steps = integer("max-steps");
  const int64_t stop_at = args.has("stop-at") ? args.integer("stop-at") : max_steps;
  if (B < 1 || T < 1 || accum < 1 || max_steps < 1) throw UsageError("avey train: sizes and step counts must be positive");

  RunData run_data = load_run_data(setting("data"), setting("tokenizer"), cfg);
  if (cfg.is_encoder() && run_data.tokenizer->vocab_size() > cfg.mask_id)
    throw UsageError(fmt::format("avey train: the {} tokenizer's ids reach {}, past the mask id {}: no room for the mask token",
                                 setting("tokenizer"), run_data.tokenizer->vocab_size() - 1, cfg.mask_id));
  data::Loader loader(run_data.train, B, T, uint64_t(integer("seed")));

  avey::Model model(cfg, device, dtype);
  model.init(uint64_t(integer("seed")));
  // the recipes of docs/model.md: the decoder's paper (cosine to 10%), Avey-B's (to 0)
  optim::AdamW opt(model.flat_params(), segments_of(model),
                   cfg.is_encoder() ? optim::AdamWConfig{0.95, 0.95, 1e-18, real("weight-decay")}
                                    : optim::AdamWConfig{0.9, 0.95, 1e-12, real("weight-decay")});
  optim::Schedule schedule{optim::parse_schedule_kind(setting("schedule")), real("lr"), integer("warmup"), max_steps,
                           cfg.is_encoder() ? 0.0 : 0.1};
  schedule.validate();
  engine::Rng rng(uint64_t(integer("seed")));

  TrainState st;
  st.tokenizer = setting("tokenizer");
  st.settings = settings;
  if (resume) {
    st = load_checkpoint(dir, model, opt);
    loader.restore(st.loader);
    rng.set_state(st.rng);
    fmt::print("resuming {} at step {}\n", dir, st.step);
  }
  fs::create_directories(dir);
  std::ofstream metrics(dir + "/metrics.jsonl", resume ? std::ios::app : std::ios::trunc);

  const double flops_per_token = avey::train_flops_per_token(cfg, T);
  const double peak = engine::peak_flops(device, dtype);  // GPU: datasheet table
  fmt::print("model {} ({} parameters) on {} in {}; {} train / {} val tokens; batch {} x {} x {} accum\n",
             setting("config"), model.num_params(), engine::device_name(device), engine::name_of(dtype),
             run_data.train.size(), run_data.val.size(), B, T, accum);

  auto save = [&] {
    st.rng = rng.state();
    st.loader = loader.state();
    save_checkpoint(dir, model, opt, st);
  };
  // Samples continue the opening of the validation text (16 tokens), so they are comparable
  // from one sample to the next.
  const std::vector<uint32_t> opening = run_data.val.read(0, std::min<uint64_t>(16, run_data.val.size()));
  const std::vector<int32_t> prompt(opening.begin(), opening.end());
  auto print_sample = [&](int64_t step) {
    if (cfg.is_encoder()) return print_fill_mask(model, prompt, *run_data.tokenizer, step, dir);
    std::vector<int32_t> ids = prompt;
    SampleOptions so{48, 0.8, 40, run_data.tokenizer->eot(), run_data.tokenizer->vocab_size()};
    sample(model, ids, so, rng);
    std::string text = run_data.tokenizer->decode(ids);
    fmt::print("--- sample at step {} ---\n{}\n---\n", step, text);
    std::ofstream(dir + "/samples.txt", std::ios::app) << fmt::format("=== step {} ===\n{}\n", step, text);
  };

  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = st.step;
  while (st.step < std::min(max_steps, stop_at)) {
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      data::Batch b = loader.next();
      if (cfg.is_encoder()) {  // masked language modelling: the window's own ids, 20% masked
        data::MaskedBatch m = data::mask_tokens(b.inputs, int32_t(cfg.mask_id), rng);
        b.inputs = std::move(m.input_ids), b.targets = std::move(m.labels);
      }
      // On the host: the model reads them there and uploads what the device needs.
      engine::Tensor ids = engine::Tensor::from(b.inputs, {b.B, b.T});
      engine::Tensor labels = engine::Tensor::from(b.targets, {b.B, b.T});
      engine::Tensor loss = model.loss(ids, labels);
      (accum > 1 ? engine::scale(loss, 1.0 / double(accum)) : loss).backward();
      loss_sum += loss.item();
    }
    const double loss = loss_sum / double(accum);
    engine::Tensor& grads = model.flat_grads();
    optim::ClipResult clip = optim::clip_grad_norm(grads, real("clip"));
    const double grad_norm = clip.norm();
    if (!std::isfinite(loss) || !std::isfinite(grad_norm))
      throw std::runtime_error(fmt::format("the loss or gradient became non-finite at step {} (loss {}, grad norm {}); "
                                           "nothing was saved over the last checkpoint in {}",
                                           st.step + 1, loss, grad_norm, dir));
    const double lr = schedule.lr_at(st.step);
    opt.step(grads, lr, clip, model.working_params());  // bf16: refreshes the working copy too
    st.step++;

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tok_s = double(B * T * accum) / secs;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const double eta = elapsed / double(st.step - first_step) * double(std::min(max_steps, stop_at) - st.step);
    nlohmann::json m = {{"step", st.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tok_s", tok_s}};
    std::string line = fmt::format("step {:>5}/{} | {}loss {:.4f} | lr {:.2e} | grad {:.3f} | {:.0f} tok/s | {:.0f} ms",
                                   st.step, max_steps, cfg.is_encoder() ? "MLM " : "", loss, lr, grad_norm, tok_s,
                                   secs * 1e3);
    if (device == engine::Device::CUDA && peak > 0)
      line += fmt::format(" | MFU {:.1f}%", 100.0 * tok_s * flops_per_token / peak);
    else  // a CPU's sustained clock is not knowable from /proc/cpuinfo: report the rate itself
      line += fmt::format(" | {:.0f} GFLOP/s", tok_s * flops_per_token / 1e9);
    line += " | ETA " + data::format_duration(eta);
    const int64_t eval_every = args.integer("eval-every");
    if ((eval_every > 0 && st.step % eval_every == 0) || st.step == max_steps) {
      EvalResult ev = evaluate(model, run_data.val, B, T, args.integer("eval-batches"));
      m["val_loss"] = ev.loss;
      m["val_accuracy"] = ev.accuracy;
      line += fmt::format(" | val {:.4f}, {} {:.1f}%", ev.loss, cfg.is_encoder() ? "masked acc" : "acc", 100 * ev.accuracy);
    }
    fmt::print("{}\n", line);
    std::fflush(stdout);
    metrics << m.dump() << "\n" << std::flush;
    const int64_t sample_every = args.integer("sample-every"), save_every = args.integer("save-every");
    if ((sample_every > 0 && st.step % sample_every == 0) || st.step == max_steps) print_sample(st.step);
    if (save_every > 0 && st.step % save_every == 0) save();
  }
  save();
  plot_metrics(dir);
  fmt::print("saved {} at step {} (weights, optimizer, metrics.jsonl, loss.svg)\n", dir, st.step);
  return 0;
}

const RegisterCommand reg{{"train", "train a model (default: tiny on Moby Dick)", run_train}};

}  // namespace
