// `avey eval`: validation loss, perplexity, top-1 accuracy and bits per byte of a trained run
// (next-token; masked-token for an Avey-B encoder), with standard
// errors, over its whole validation set (or any named corpus, text, folder or shards given with
// --data; evaluate.h says which windows and how the errors are computed).
#include <fmt/format.h>

#include <cmath>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/evaluate.h"
#include "cli/model_folder.h"
#include "cli/run_data.h"

namespace {

// A number for JSON: null when it is not finite (a standard error of one window).
std::string json_number(double x, int digits) { return std::isfinite(x) ? fmt::format("{:.{}f}", x, digits) : "null"; }

std::string plus_minus(double se) { return std::isfinite(se) ? fmt::format(" ± {:.4f}", se) : ""; }

int run_eval(int argc, char** argv) {
  Args args("eval", "Validation loss, perplexity and bits per byte of a trained model, with standard errors.");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("data", "PATH", "corpus name, text, folder, shards or glob to evaluate (default: the run's validation split)", "");
  args.option("batch-size", "B", "windows per batch", "4");
  args.option("seq-len", "T", "tokens predicted per window", "256");
  args.option("max-batches", "N", "evaluate only N batches of windows spread over the set (0: the whole set)", "0");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("json", "print one JSON object");
  if (!args.parse(argc, argv)) return 0;
  const int64_t B = args.integer("batch-size"), T = args.integer("seq-len"), max_batches = args.integer("max-batches");
  if (B < 1) throw UsageError("avey eval: --batch-size must be at least 1");
  if (T < 1) throw UsageError("avey eval: --seq-len must be at least 1");
  if (max_batches < 0) throw UsageError("avey eval: --max-batches must be 0 (the whole set) or more");

  const ModelFolder run = open_model_folder(args.str("checkpoint"));
  const engine::Device device = resolve_device(args.str("device"));
  auto model = load_model(run, device, resolve_precision("auto", device));
  RunData rd = load_run_data(args.str("data"), run.spec.tokenizer, run.spec.config);
  EvalResult r = evaluate(*model, rd.val, B, T, max_batches, rd.tokenizer.get(), "eval");
  if (args.on("json")) {
    fmt::print("{{\"loss\": {}, \"loss_se\": {}, \"perplexity\": {}, \"accuracy\": {}, \"accuracy_se\": {}, "
               "\"bpb\": {}, \"bpb_se\": {}, \"tokens\": {}, \"bytes\": {}, \"windows\": {}, \"seq_len\": {}, "
               "\"step\": {}, \"objective\": \"{}\"}}\n",
               json_number(r.loss, 6), json_number(r.loss_se, 6), json_number(std::exp(r.loss), 4),
               json_number(r.accuracy, 6), json_number(r.accuracy_se, 6), json_number(r.bpb, 6),
               json_number(r.bpb_se, 6), r.tokens, r.bytes, r.windows, T, run.step,
               run.spec.config.is_encoder() ? "masked" : "next-token");
  } else {
    fmt::print("step {} | validation {}loss {:.4f}{} | perplexity {:.2f} | accuracy {:.4f}{} | {:.4f}{} bits per byte | "
               "{} tokens predicted, {} bytes, {} windows of up to {} (± one standard error over windows)\n",
               run.step, run.spec.config.is_encoder() ? "masked-token " : "", r.loss, plus_minus(r.loss_se), std::exp(r.loss),
               r.accuracy, plus_minus(r.accuracy_se), r.bpb, plus_minus(r.bpb_se), r.tokens, r.bytes, r.windows, T);
  }
  return 0;
}

const RegisterCommand reg{{"eval", "validation loss, perplexity and bits per byte of a trained model", run_eval}};

}  // namespace
