// `avey generate`: sample a continuation of a prompt from a trained model (any folder
// model_folder.h reads), streaming tokens as they come, until end-of-text or --max-new-tokens.
// Generation mode ranks and processes only the split that holds the newest token, so each new
// token costs the same whatever the prompt's length.
#include <fmt/format.h>

#include <chrono>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/model_folder.h"
#include "cli/run_data.h"
#include "cli/sampling.h"

namespace {

int run_generate(int argc, char** argv) {
  Args args("generate", "Sample text from a trained model.");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("prompt", "STR", "text to continue", "");
  args.option("max-new-tokens", "N", "tokens to generate at most", "100");
  args.option("temperature", "X", "sampling temperature (0: greedy)", "0.8");
  args.option("top-k", "K", "sample among the K most likely tokens (0: all)", "40");
  args.option("top-p", "P", "then among the fewest likeliest tokens whose probability reaches P (1: all)", "1");
  args.option("seed", "S", "sampling seed (the same seed gives the same text)", "11");
  args.option("device", "cpu|cuda|auto", "where to run", "auto");
  args.flag("ignore-eot", "keep going past <|endoftext|> (by default generation stops there)");
  args.flag("stats", "print timing (time to first token, tokens per second) to stderr");
  if (!args.parse(argc, argv)) return 0;

  SampleOptions opt{.max_new_tokens = args.integer("max-new-tokens"), .temperature = args.real("temperature"),
                    .top_k = args.integer("top-k"), .top_p = args.real("top-p")};
  if (opt.max_new_tokens < 0 || !(opt.temperature >= 0) || opt.top_k < 0)
    throw UsageError("avey generate: --max-new-tokens, --temperature and --top-k must not be negative");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw UsageError("avey generate: --top-p must be in (0, 1]");
  const ModelFolder folder = open_model_folder(args.str("checkpoint"));
  if (folder.spec.config.is_encoder())
    throw UsageError("avey generate: " + args.str("checkpoint") + " holds an avey-b encoder (a masked language model): "
                     "it fills masks, it does not generate text");
  auto tok = tokenizer_for(folder.spec.tokenizer, folder.spec.config);
  const engine::Device device = resolve_device(args.str("device"));
  auto model = load_model(folder, device, resolve_precision("auto", device));
  opt.vocab_limit = tok->vocab_size();
  if (!args.on("ignore-eot")) opt.stop_token = tok->eot();

  std::vector<int32_t> ids = tok->encode(args.str("prompt"));
  if (ids.empty()) ids.push_back(tok->eot());  // an empty prompt starts a new document
  const size_t prompt_len = ids.size();
  engine::Rng rng(uint64_t(args.integer("seed")));

  fmt::print("{}", args.str("prompt"));
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  double first = 0;
  sample(*model, ids, opt, rng, [&](int32_t id) {
    if (first == 0) first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (id == opt.stop_token) return;  // end-of-text ends the text: nothing to print
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
