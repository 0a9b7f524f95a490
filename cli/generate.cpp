// `avey generate`: sample a continuation of a prompt from a trained run, streaming tokens as
// they come. Generation mode ranks and processes only the split that holds the newest token,
// so each new token costs the same whatever the prompt's length.
#include <fmt/format.h>

#include <chrono>

#include "cli/args.h"
#include "cli/checkpoint.h"
#include "cli/command.h"
#include "cli/run_data.h"
#include "cli/sampling.h"

namespace {

int run_generate(int argc, char** argv) {
  Args args("generate", "Sample text from a trained model.");
  args.option("checkpoint", "DIR", "run folder written by avey train", "runs/tiny");
  args.option("prompt", "STR", "text to continue", "");
  args.option("max-new-tokens", "N", "tokens to generate", "100");
  args.option("temperature", "X", "sampling temperature (0: greedy)", "0.8");
  args.option("top-k", "K", "sample among the K most likely tokens (0: all)", "40");
  args.option("seed", "S", "sampling seed", "11");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("stats", "print timing (time to first token, tokens per second) to stderr");
  if (!args.parse(argc, argv)) return 0;

  const std::string dir = args.str("checkpoint");
  LoadedModel run = read_run_config(dir);
  if (run.config.is_encoder())
    throw UsageError("avey generate: " + dir + " holds an avey-b encoder (a masked language model): it fills masks, "
                     "it does not generate text");
  auto tok = tokenizer_for(run.tokenizer, run.config);
  const engine::Device device = resolve_device(args.str("device"));
  avey::Model model(run.config, device, resolve_precision("auto", device));
  load_weights(dir, model);

  std::vector<int32_t> ids = tok->encode(args.str("prompt"));
  if (ids.empty()) ids.push_back(tok->eot());  // an empty prompt starts a new document
  const size_t prompt_len = ids.size();
  SampleOptions opt{args.integer("max-new-tokens"), args.real("temperature"), args.integer("top-k"), -1,
                    tok->vocab_size()};
  if (opt.max_new_tokens < 0 || opt.temperature < 0 || opt.top_k < 0)
    throw UsageError("avey generate: --max-new-tokens, --temperature and --top-k must not be negative");
  engine::Rng rng(uint64_t(args.integer("seed")));

  fmt::print("{}", args.str("prompt"));
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  double first = 0;
  sample(model, ids, opt, rng, [&](int32_t id) {
    if (first == 0) first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{}", tok->decode({id}));  // bytes in order: a split character still prints whole
    std::fflush(stdout);
  });
  fmt::print("\n");
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (args.on("stats"))
    fmt::print(stderr, "prompt {} tokens | first token {:.1f} ms | {} tokens in {:.2f} s ({:.1f} tok/s)\n", prompt_len,
               first * 1e3, ids.size() - prompt_len, total, double(ids.size() - prompt_len) / total);
  return 0;
}

const RegisterCommand reg{{"generate", "sample text from a trained model", run_generate}};

}  // namespace
