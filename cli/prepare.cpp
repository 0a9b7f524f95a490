// `avey prepare`: tokenise a text file or a folder of *.txt files into a token shard.
//   avey prepare --input book.txt --out book.bin [--tokenizer p50k]
// With no --input it prepares the default corpus (Moby Dick, train/val shards in the data folder).
#include <fmt/format.h>

#include "cli/args.h"
#include "cli/command.h"
#include "data/corpus.h"
#include "data/shard.h"
#include "data/tokenizer.h"

namespace {

int run_prepare(int argc, char** argv) {
  Args args("prepare", "Tokenise a text file or folder of *.txt files into a token shard.");
  args.option("input", "PATH", "a text file, or a folder whose *.txt files are the documents (default: the Moby Dick corpus)");
  args.option("out", "SHARD", "the shard file to write (needed with --input)");
  args.option("tokenizer", "NAME", "p50k, r50k or bytes", "p50k");
  if (!args.parse(argc, argv)) return 0;
  auto tok = data::load_tokenizer(args.str("tokenizer"));

  if (!args.given("input")) {
    if (args.given("out")) throw UsageError("avey prepare: --out needs --input (the default corpus goes to the data folder)");
    data::CorpusShards shards = data::prepare_default_corpus(*tok, true);
    fmt::print("moby-dick ({}): train {} tokens ({}), val {} tokens ({})\n", tok->name(), shards.train_tokens,
               shards.train, shards.val_tokens, shards.val);
    return 0;
  }
  std::string out = args.str("out");
  std::vector<std::string> files = data::text_files(args.str("input"));
  std::vector<uint32_t> tokens = data::tokenize_files(*tok, files, "prepare");
  data::write_shard(out, tok->name(), tokens);
  fmt::print("wrote {}: {} tokens ({}) from {} file{}\n", out, tokens.size(), tok->name(), files.size(),
             files.size() == 1 ? "" : "s");
  return 0;
}

const RegisterCommand reg{{"prepare", "tokenise text into a token shard", run_prepare}};

}  // namespace
