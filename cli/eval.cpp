// `avey eval`: validation loss and perplexity of a trained run on its validation data (or on
// any text, folder or shard given with --data).
#include <fmt/format.h>

#include <cmath>

#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/command.h"
#include "cli/evaluate.h"
#include "cli/run_data.h"

namespace {

int run_eval(int argc, char** argv) {
  Args args("eval", "Validation loss and perplexity of a trained model.");
  args.option("checkpoint", "DIR", "run folder written by avey train", "runs/tiny");
  args.option("data", "PATH", "text, folder or shard to evaluate on (default: the run's validation split)", "");
  args.option("batch-size", "B", "sequences per batch", "4");
  args.option("seq-len", "T", "tokens per sequence", "256");
  args.option("max-batches", "N", "batches to average over", "50");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("json", "print one JSON object");
  if (!args.parse(argc, argv)) return 0;

  const std::string dir = args.str("checkpoint");
  LoadedModel run = read_run_config(dir);
  const engine::Device device = resolve_device(args.str("device"));
  avey::Model model(run.config, device, resolve_precision("auto", device));
  load_weights(dir, model);
  RunData rd = load_run_data(args.str("data"), run.tokenizer, run.config);
  EvalResult r = evaluate(model, rd.val, args.integer("batch-size"), args.integer("seq-len"), args.integer("max-batches"));
  if (args.on("json"))
    fmt::print("{{\"loss\": {:.6f}, \"perplexity\": {:.4f}, \"tokens\": {}, \"step\": {}}}\n", r.loss, std::exp(r.loss),
               r.tokens, run.step);
  else
    fmt::print("step {} | validation loss {:.4f} | perplexity {:.2f} | {} tokens\n", run.step, r.loss, std::exp(r.loss),
               r.tokens);
  return 0;
}

const RegisterCommand reg{{"eval", "validation loss and perplexity of a trained model", run_eval}};

}  // namespace
