// `avey train`: the training loop.
//
//   for each step: zero the flat gradient buffer; for each of grad_accum micro-batches, the
//   loss (scaled by 1/grad_accum) goes backward into it; clip by the global norm; one AdamW
//   step at the schedule's learning rate. Every step prints a progress line and appends to
//   metrics.jsonl; every --eval-every steps the validation loss, --sample-every a sample,
//   --save-every a checkpoint (with its validation loss: the best one is kept). A checkpoint is
//   also saved at the end, at --stop-at, and on SIGINT/SIGTERM (after the step in progress).
//   Data parallel (--nproc-per-node N, or torchrun/mpirun/srun: cli/data_parallel.h): each of
//   the world's ranks takes its own micro-batches and the gradients are averaged over them
//   before the clip; rank 0 alone writes the run folder and prints.
//
// With no flags it trains the `tiny` preset on the default corpus (Moby Dick) on the best
// device present. --resume continues a run bit-identically from its folder's latest checkpoint;
// the run folder's layout and why a crash never corrupts it: run_folder.h.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "avey/flops.h"
#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/command.h"
#include "cli/data_parallel.h"
#include "cli/evaluate.h"
#include "cli/grad_stats.h"
#include "cli/json_fields.h"
#include "cli/launch.h"
#include "cli/model_folder.h"
#include "cli/niah_probe.h"
#include "cli/run_data.h"
#include "cli/run_folder.h"
#include "cli/sampling.h"
#include "cli/stop_signal.h"
#include "cli/svg_plot.h"
#include "cli/train_settings.h"
#include "data/progress.h"
#include "engine/atomic_file.h"
#include "engine/device_info.h"
#include "engine/fused_ops.h"
#include "engine/ops.h"
#include "optim/clip.h"
#include "optim/schedule.h"

namespace fs = std::filesystem;

namespace {

// An encoder's sample: every fourth id of the opening text masked, and what the model fills in.
std::string fill_mask_sample(avey::Model& model, const std::vector<int32_t>& opening, const data::Tokenizer& tok) {
  engine::NoGrad no_grad;
  std::vector<int32_t> masked = opening;
  for (size_t i = 3; i < masked.size(); i += 4) masked[i] = int32_t(model.config().mask_id);
  const engine::Tensor logits = model.logits(engine::Tensor::from(masked, {1, int64_t(masked.size())}));
  const std::vector<int32_t> best = engine::row_argmax(engine::reshape(logits, {int64_t(masked.size()), logits.size(-1)}))
                                        .to(engine::Device::CPU)
                                        .to_vector<int32_t>();
  // a prediction past the tokenizer's ids (the model's vocabulary may be larger) shows as its number
  auto word = [&tok](int32_t id) { return id < tok.vocab_size() ? tok.decode({id}) : fmt::format("<{}>", id); };
  std::string text;
  for (size_t i = 0; i < masked.size(); ++i)
    text += i % 4 == 3 ? fmt::format("[{} -> {}]", word(opening[i]), word(best[i])) : word(opening[i]);
  return text;
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
    if (!j.is_object() || !j["step"].is_number()) continue;
    // a non-finite loss is written as null: no point
    if (j["loss"].is_number()) train.points.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
    if (j["val_loss"].is_number()) val.points.emplace_back(j["step"].get<double>(), j["val_loss"].get<double>());
  }
  write_svg_plot(dir + "/loss.svg", "Avey training", "step", "cross-entropy (nats/token)", {train, val});
}

// The token streams' fingerprint, kept in run.json: --resume refuses data that changed since.
// Their sizes, and a checksum of 64 runs of 64 ids spread evenly over each: reading a large
// corpus whole at every start would take long, and an edit of a text shifts every id after it.
nlohmann::json fingerprint(const RunData& data) {
  engine::Checksum sum;
  for (const data::TokenStream* stream : {&data.train, &data.val}) {
    const uint64_t runs = 64, len = std::min<uint64_t>(64, stream->size());
    for (uint64_t i = 0; i < runs && len > 0; ++i) {
      const std::vector<uint32_t> ids = stream->read((stream->size() - len) * i / (runs - 1), len);
      sum.update(ids.data(), ids.size() * sizeof(uint32_t));
    }
  }
  return {{"train_tokens", data.train.size()}, {"val_tokens", data.val.size()}, {"checksum", engine::to_hex(sum.h)}};
}

// Avey-B's pretraining recipe (docs/model.md section 2) for the flags not given: its config's lr
// (7e-4), sequence length and weight decay (0.01), linear warm-up over the first 10% of the steps
// then cosine to 0. (Its AdamW betas 0.95/0.95 and eps 1e-18 are set where the optimizer is made.)
void use_encoder_recipe(TrainSettings& settings, const avey::Config& cfg) {
  if (!settings.chosen("lr")) settings.set("lr", cfg.lr);
  if (!settings.chosen("weight-decay")) settings.set("weight-decay", cfg.weight_decay);
  if (!settings.chosen("seq-len")) settings.set("seq-len", cfg.seq_len);
  if (!settings.chosen("schedule")) settings.set("schedule", "warmup_cosine");
  if (!settings.chosen("warmup")) settings.set("warmup", settings.integer("max-steps") / 10);
}

// What a run starts from: its settings, its model's config, and the folder --init-from names.
// Resuming, the run folder is locked first (by the writer: rank 0 of a data-parallel run; the
// others only read it); a new run takes its lock once its inputs are known to be good (train_run
// below), so that a bad flag or file leaves nothing behind.
struct RunStart {
  std::unique_ptr<RunFolder> folder;  // resuming, by the writer: locked
  nlohmann::json saved;                // resuming: run.json
  TrainSettings settings;
  avey::Config config;
  std::optional<ModelFolder> init;
};

RunStart start_run(const Args& args, const std::string& dir, bool writer) {
  if (args.on("resume")) {
    if (!fs::exists(dir + "/run.json")) throw UsageError("avey train: --resume but " + dir + " holds no run");
    auto folder = writer ? std::make_unique<RunFolder>(dir) : nullptr;
    nlohmann::json saved = read_json_object(dir + "/run.json");
    const std::string what = dir + "/run.json";
    TrainSettings settings = TrainSettings::resumed(json_field(saved, "settings", what), args, what);
    // A run stopped before its first checkpoint starts again from its --init-from folder.
    std::optional<ModelFolder> init;
    if (!settings.text("init-from").empty() && !latest_checkpoint(dir)) init = open_model_folder(settings.text("init-from"));
    return {std::move(folder), saved, settings, read_model_config(dir + "/config.json").config, std::move(init)};
  }
  if (args.given("config") && args.given("init-from"))
    throw UsageError("avey train: --config and --init-from both name the model; give one");
  // the config file's training keys are defaults for the flags (train_settings.h)
  const avey::Config file_config = args.given("init-from") ? avey::Config{} : avey::load_config(args.str("config"));
  TrainSettings settings = TrainSettings::from_flags(args, file_config.training, args.str("config"));
  std::optional<ModelFolder> init;
  if (!settings.text("init-from").empty()) {
    init = open_model_folder(settings.text("init-from"));
    if (!args.given("tokenizer")) settings.set("tokenizer", init->spec.tokenizer);
  }
  const avey::Config config = init ? init->spec.config : file_config;
  if (config.is_encoder()) use_encoder_recipe(settings, config);
  return {nullptr, {}, settings, config, std::move(init)};
}

int run_train(int argc, char** argv) {
  Args args("train", "Train an Avey model. With no flags: the tiny preset on the default corpus (Moby Dick).");
  args.option("device", "cpu|cuda|auto", "where to train (auto: the GPU when there is one)", "auto");
  TrainSettings::declare(args);
  args.option("stop-at", "STEP", "stop after this step with a checkpoint (resume later with --resume)");
  args.option("out", "DIR", "run folder (checkpoints, metrics.jsonl, loss.svg, samples.txt)", "runs/tiny");
  args.flag("resume", "continue the run in --out from its latest checkpoint (with its settings)");
  args.option("nproc-per-node", "N", "train data parallel in N processes, one per GPU (docs/distributed.md)", "1");
  if (!args.parse(argc, argv)) return 0;

  const engine::Device device = resolve_device(args.str("device"));
  if (const std::optional<int> code = launch_workers(args.integer("nproc-per-node"), device, argc, argv)) return *code;
  DataParallel dp(device);  // world 1 unless a launcher started this process
  const bool writer = dp.rank() == 0;

  const std::string dir = args.str("out");
  const bool resume = args.on("resume");
  RunStart start = start_run(args, dir, writer);
  std::unique_ptr<RunFolder>& run = start.folder;
  const TrainSettings& settings = start.settings;
  const avey::Config& cfg = start.config;
  if (resume) dp.check_resume(start.saved, dir);
  const engine::DType dtype = resolve_precision(settings.text("precision"), device);
  const int64_t B = settings.integer("batch-size"), T = settings.integer("seq-len"), accum = settings.integer("grad-accum");
  const int64_t max_steps = settings.integer("max-steps");
  const int64_t stop_at = args.has("stop-at") ? args.integer("stop-at") : max_steps;
  const int64_t seed = settings.integer("seed");

  RunData run_data = load_run_data(settings.text("data"), settings.text("tokenizer"), cfg);
  if (cfg.is_encoder() && run_data.tokenizer->vocab_size() > cfg.mask_id)
    throw UsageError(fmt::format("avey train: the {} tokenizer's ids reach {}, past the mask id {}: no room for the mask "
                                 "token",
                                 settings.text("tokenizer"), run_data.tokenizer->vocab_size() - 1, cfg.mask_id));
  if (resume && fingerprint(run_data) != json_field(start.saved, "data", dir + "/run.json"))
    throw std::runtime_error(fmt::format("the data changed since the run started ({}/run.json has {}, the data now {})",
                                         dir, start.saved["data"].dump(), fingerprint(run_data).dump()));
  const int64_t probe_size = settings.integer("niah-probe");
  if (probe_size > 0 && cfg.is_encoder())
    throw UsageError("avey train: --niah-probe scores a decoder's answer; an avey-b model does not generate");
  const NiahProbe probe = probe_size > 0 ? make_niah_probe(*run_data.tokenizer, T, probe_size) : NiahProbe{};
  data::Loader loader(run_data.train, B, T, uint64_t(seed));

  avey::Model model(cfg, device, dtype);
  // the recipes of docs/model.md: the decoder's paper (cosine to 10%), Avey-B's (to 0)
  optim::AdamW opt(model.flat_params(), segments_of(model),
                   cfg.is_encoder() ? optim::AdamWConfig{0.95, 0.95, 1e-18, settings.real("weight-decay")}
                                    : optim::AdamWConfig{0.9, 0.95, 1e-12, settings.real("weight-decay")});
  optim::Schedule schedule{optim::parse_schedule_kind(settings.text("schedule")), settings.real("lr"),
                           settings.integer("warmup"), max_steps, cfg.is_encoder() ? 0.0 : 0.1};
  schedule.validate();
  engine::Rng rng{uint64_t(seed)};

  if (writer && !resume) {
    run = std::make_unique<RunFolder>(dir);
    if (run->has_run() || fs::exists(dir + "/latest"))
      throw UsageError("avey train: " + dir + " already holds a run; continue it with --resume or choose another --out");
    if (fs::exists(dir + "/train_state.json"))  // the layout before step folders: its weights at the top
      throw UsageError("avey train: " + dir + " holds a run of an older avey (no run.json), which --resume cannot "
                       "continue; start from its weights with --init-from into another --out");
    engine::write_file_atomic(dir + "/config.json", cfg.to_json().dump(2) + "\n");
    run->write_run({{"settings", settings.json()},
                    {"data", fingerprint(run_data)},
                    {"world_size", dp.world()},
                    {"from_config", settings.from_file()}});
  } else if (writer && settings.changed()) {
    start.saved["settings"] = settings.json();
    run->write_run(start.saved);
  }
  TrainState st;
  st.tokenizer = settings.text("tokenizer");
  if (writer) run->remove_leftovers();
  const std::optional<std::string> latest = latest_checkpoint(dir);
  if (latest) {
    st = load_checkpoint(*latest, model, opt);
    try {
      loader.restore(st.loader);
      rng.set_state(st.rng);
    } catch (const std::exception& e) {
      throw std::runtime_error(*latest + "/train_state.json: " + e.what());
    }
    if (st.best && writer) run->set_pointer("best", step_folder_name(st.best->step));  // a crash may have left it behind
    fmt::print("resuming {} at step {}\n", dir, st.step);
  } else {
    // A new run, or one stopped before its first checkpoint: the same start either way.
    if (start.init) load_weights(*start.init, model);
    else model.init(uint64_t(seed));
    if (resume) fmt::print("{} holds no checkpoint yet: starting the run again from step 0\n", dir);
  }
  dp.share_weights(model);
  std::ofstream metrics;
  if (writer) {
    run->cut_logs(st.step);
    metrics.open(dir + "/metrics.jsonl", std::ios::app);
  }

  const double flops_per_token = avey::train_flops_per_token(cfg, T);
  const double peak = engine::peak_flops(device, dtype);  // GPU: datasheet table
  fmt::print("model {} ({} parameters) on {} in {}; {} train / {} val tokens; batch {} x {} x {} accum x {} rank{}\n",
             settings.text(settings.text("init-from").empty() ? "config" : "init-from"), model.num_params(),
             engine::device_name(device),
             engine::name_of(dtype), run_data.train.size(), run_data.val.size(), B, T, accum, dp.world(),
             dp.world() == 1 ? "" : "s");

  int64_t saved_step = latest ? st.step : -1;  // the step of the checkpoint on disk
  auto save = [&] {
    if (st.step == saved_step || !writer) return;
    st.rng = rng.state();
    st.loader = loader.state();
    const std::string name = save_checkpoint(dir, model, opt, st);
    run->sync_logs();  // the logs reach the disk before the checkpoint that --resume cuts them back to
    run->set_pointer("latest", name);
    if (st.best && st.best->step == st.step) run->set_pointer("best", name);
    run->prune(settings.integer("keep-last"), st.best ? std::optional(st.best->step) : std::nullopt);
    saved_step = st.step;
  };
  // Samples continue the opening of the validation text (16 tokens), so they are comparable
  // from one sample to the next. Every rank draws them (the generator stays the same on all);
  // rank 0 shows and keeps them.
  const std::vector<uint32_t> opening = run_data.val.read(0, std::min<uint64_t>(16, run_data.val.size()));
  const std::vector<int32_t> prompt(opening.begin(), opening.end());
  auto print_sample = [&](int64_t step) {
    std::string text;
    if (cfg.is_encoder()) {
      text = fill_mask_sample(model, prompt, *run_data.tokenizer);
    } else {
      std::vector<int32_t> ids = prompt;
      SampleOptions so{.max_new_tokens = 48, .temperature = 0.8, .top_k = 40, .stop_token = run_data.tokenizer->eot(),
                       .vocab_limit = run_data.tokenizer->vocab_size()};
      sample(model, ids, so, rng);
      text = run_data.tokenizer->decode(ids);
    }
    if (!writer) return;
    if (cfg.is_encoder()) fmt::print("--- fill-mask at step {} ([masked -> predicted]) ---\n{}\n---\n", step, text);
    else fmt::print("--- sample at step {} ---\n{}\n---\n", step, text);
    std::ofstream(dir + "/samples.txt", std::ios::app)
        << fmt::format("=== step {}{} ===\n{}\n", step, cfg.is_encoder() ? " (fill-mask)" : "", text);
  };

  GradStats grad_stats(model, segments_of(model), settings.integer("grad-stats"));
  std::ofstream grad_log;
  if (writer && settings.integer("grad-stats") > 0) grad_log.open(dir + "/grad_stats.jsonl", std::ios::app);
  StopSignals stop;
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = st.step;
  while (st.step < std::min(max_steps, stop_at) && !dp.any(stop.received())) {
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    const bool record = grad_stats.begin(st.step + 1);
    double loss_sum = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      data::Batch b = dp.next_batch(loader, rng, cfg);  // an encoder's masked
      // On the host: the model reads them there and uploads what the device needs.
      engine::Tensor ids = engine::Tensor::from(b.inputs, {b.B, b.T});
      engine::Tensor labels = engine::Tensor::from(b.targets, {b.B, b.T});
      engine::Tensor loss = model.loss(ids, labels);
      (accum > 1 ? engine::scale(loss, 1.0 / double(accum)) : loss).backward();
      loss_sum += loss.item();
    }
    engine::Tensor& grads = model.flat_grads();
    const double loss = dp.average(grads, loss_sum / double(accum));  // over the ranks
    if (record) grad_stats.before_update();
    optim::ClipResult clip = optim::clip_grad_norm(grads, settings.real("clip"));
    const double grad_norm = clip.norm();
    if (!std::isfinite(loss) || !std::isfinite(grad_norm))
      throw std::runtime_error(fmt::format("the loss or gradient became non-finite at step {} (loss {}, grad norm {}); "
                                           "nothing was saved over the last checkpoint in {}",
                                           st.step + 1, loss, grad_norm, dir));
    const double lr = schedule.lr_at(st.step);
    opt.step(grads, lr, clip, model.working_params());  // bf16: refreshes the working copy too
    st.step++;
    if (record) {
      const nlohmann::json line = grad_stats.after_update();  // every rank: unhooks its blocks
      if (writer) grad_log << line.dump() << "\n" << std::flush;
    }

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tok_s = double(B * T * accum * dp.world()) / secs;  // the global batch
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
    // A scheduled checkpoint (--save-every, the last step) is evaluated too, so that the best one
    // can be known; one saved early (--stop-at, a signal) is not: the metrics stay those of an
    // uninterrupted run. Rank 0 alone evaluates: the others' weights are the same, and the
    // validation loss only reaches the log and the choice of `best`.
    const int64_t eval_every = settings.integer("eval-every"), save_every = settings.integer("save-every");
    const bool scheduled_save = (save_every > 0 && st.step % save_every == 0) || st.step == max_steps;
    if (writer && (scheduled_save || (eval_every > 0 && st.step % eval_every == 0))) {
      EvalResult ev = evaluate(model, run_data.val, B, T, settings.integer("eval-batches"));
      m["val_loss"] = ev.loss;
      m["val_accuracy"] = ev.accuracy;
      line += fmt::format(" | val {:.4f}, {} {:.1f}%", ev.loss, cfg.is_encoder() ? "masked acc" : "acc", 100 * ev.accuracy);
      if (probe_size > 0) {
        const ProbeScore p = score_niah_probe(model, probe);
        m["niah_probe_token_accuracy"] = p.token_accuracy;
        m["niah_probe_exact"] = p.exact;
        line += fmt::format(" | passkey {:.0f}% ({:.0f}% of key tokens)", 100 * p.exact, 100 * p.token_accuracy);
      }
      if (scheduled_save && std::isfinite(ev.loss) && (!st.best || ev.loss < st.best->val_loss))
        st.best = TrainState::Best{st.step, ev.loss};
    }
    fmt::print("{}\n", line);
    std::fflush(stdout);
    metrics << m.dump() << "\n" << std::flush;
    const int64_t sample_every = settings.integer("sample-every");
    if ((sample_every > 0 && st.step % sample_every == 0) || st.step == max_steps) print_sample(st.step);
    if (scheduled_save) save();
  }
  save();
  if (writer) plot_metrics(dir);
  if (int sig = stop.received()) {
    fmt::print("stopped by {} after step {}: saved {}/{} (continue with --resume)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
               st.step, dir, step_folder_name(st.step));
    return 128 + sig;
  }
  fmt::print("saved {}/{} at step {} (weights, optimizer, metrics.jsonl, loss.svg)\n", dir, step_folder_name(st.step),
             st.step);
  return 0;
}

const RegisterCommand reg{{"train", "train a model (default: tiny on Moby Dick)", run_train}};

}  // namespace
