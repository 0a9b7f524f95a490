// `avey prepare`: tokenise text into token shards on every core, with a progress line.
//   avey prepare                                   the default corpus's cached shards (Moby Dick)
//   avey prepare --input research                  a named corpus's cached train/val shards (data/corpus.h)
//   avey prepare --input PATH --out FILE.bin       one shard, however large (streamed: the corpus is never
//                                                  in memory whole)
//   avey prepare --input PATH --out DIR            DIR/shard-000000.bin, shard-000001.bin, ... of
//                                                  --shard-tokens ids each (the last one fewer)
// PATH: a text or JSON-lines file, a folder of *.txt/*.jsonl files, or a quoted glob (data/paths.h).
// Every shard is written to a temporary file and renamed into place: a failure leaves no half shard.
#include <fmt/format.h>

#include <filesystem>

#include "cli/args.h"
#include "cli/command.h"
#include "data/corpus.h"
#include "data/paths.h"
#include "data/shard.h"
#include "data/tokenized_files.h"
#include "data/tokenizer.h"

namespace fs = std::filesystem;

namespace {

int run_prepare(int argc, char** argv) {
  Args args("prepare", "Tokenise text (files, folders, JSON lines, globs) into token shards on every core.");
  args.option("input", "PATH", "a text or .jsonl file, a folder of *.txt/*.jsonl, a quoted glob, or a corpus name "
                               "(moby-dick, research) (default: moby-dick)");
  args.option("out", "FILE.bin|DIR", "one shard file, or a folder for numbered shards (needed unless --input is a corpus name)");
  args.option("shard-tokens", "N", "ids per shard in a folder", "100000000");
  args.option("threads", "N", "tokenising threads (0: every core)", "0");
  args.option("tokenizer", "NAME", "p50k, r50k or bytes", "p50k");
  if (!args.parse(argc, argv)) return 0;
  const int64_t shard_tokens = args.integer("shard-tokens"), threads = args.integer("threads");
  if (shard_tokens < 1) throw UsageError("avey prepare: --shard-tokens must be at least 1");
  if (threads < 0) throw UsageError("avey prepare: --threads must be 0 (every core) or more");
  const std::string input = args.has("input") ? args.str("input") : "moby-dick";

  if (data::is_named_corpus(input)) {
    if (args.given("out")) throw UsageError("avey prepare: --out is not used with a corpus name (its shards go to the data folder)");
    auto tok = data::load_tokenizer(args.str("tokenizer"));
    data::CorpusShards shards = data::prepare_corpus(input, *tok, true);
    fmt::print("{} ({}): train {} tokens ({}), val {} tokens ({})\n", input, tok->name(), shards.train_tokens,
               shards.train, shards.val_tokens, shards.val);
    return 0;
  }
  if (!args.given("out")) throw UsageError("avey prepare: --input " + input + " needs --out FILE.bin or --out DIR");
  const std::string out = args.str("out");
  const bool one_file = fs::path(out).extension() == ".bin";
  if (!one_file && fs::exists(out) && !fs::is_directory(out))
    throw UsageError("avey prepare: --out " + out + " is a file; give FILE.bin for one shard or a folder");
  if (!one_file && fs::exists(fs::path(out) / "shard-000000.bin"))
    throw UsageError("avey prepare: " + out + " already holds shards; remove them or choose another --out");
  auto tok = data::load_tokenizer(args.str("tokenizer"));
  std::vector<std::string> files = data::expand_path(input, {".txt", ".jsonl"});

  data::TokenizeOptions options;
  options.threads = int(threads), options.progress = "prepare";
  data::TokenizedFiles ids(*tok, files, options);
  auto source = [&](uint32_t* o, size_t n) { return ids.read(o, n); };
  const uint32_t width = data::id_width(tok->vocab_size());
  int64_t shards = 0;
  if (one_file) {
    data::write_shard(out, tok->name(), width, source);
    shards = 1;
  } else {
    fs::create_directories(out);
    for (; shards == 0 || !ids.at_end(); ++shards)
      data::write_shard(fmt::format("{}/shard-{:06}.bin", out, shards), tok->name(), width, source, uint64_t(shard_tokens));
  }
  fmt::print("wrote {}: {} shard{}, {} tokens ({}) from {} file{}\n", out, shards, shards == 1 ? "" : "s", ids.tokens(),
             tok->name(), files.size(), files.size() == 1 ? "" : "s");
  return 0;
}

const RegisterCommand reg{{"prepare", "tokenise text into token shards on every core", run_prepare}};

}  // namespace
