// `avey needles`: a training shard of a corpus mixed with synthetic needle documents (passkey and
// RULER-style, each shorter than --seq-len and starting a loader window: data/needle_mix.h), for
// `avey train --data SHARD --seq-len T` with the same T (the long-context recipe, docs/niah.md).
#include <fmt/format.h>

#include "cli/args.h"
#include "cli/command.h"
#include "data/corpus.h"
#include "data/documents.h"
#include "data/needle_mix.h"
#include "data/paths.h"
#include "data/progress.h"
#include "data/shard.h"
#include "data/tokenized_files.h"

namespace niah = data::niah;

namespace {

int run_needles(int argc, char** argv) {
  Args args("needles", "Write a training shard: a corpus mixed with synthetic needle documents.");
  args.option("input", "PATH,...", "corpus: text files or folders of *.txt files (default: the Moby Dick training chapters)");
  args.option("out", "SHARD", "the shard file to write");
  args.option("tokenizer", "NAME", "p50k, r50k or bytes", "p50k");
  args.option("seq-len", "T", "the training sequence length: documents have fewer tokens and start a window", "512");
  args.option("share", "X", "fraction of the T-token windows that hold a needle document", "0.25");
  args.option("kinds", "K,K,...", "needle documents, taken in turn: passkey, sniah1, sniah2", "passkey,sniah1,sniah2");
  args.option("shortest", "N", "the smallest needle document in tokens (0: T/4); sizes are uniform in [N, T)", "0");
  args.flag("fill", "a needle window holds documents back to back while one of --shortest tokens fits");
  args.option("tokens", "N", "the shard's size in tokens, the corpus repeated as needed (0: the corpus once)", "0");
  args.option("seed", "S", "seed of the documents and of the windows that hold them", "11");
  if (!args.parse(argc, argv)) return 0;
  if (!args.given("out")) throw UsageError("avey needles: --out SHARD is required");

  niah::MixOptions opt;
  opt.seq_len = args.integer("seq-len");
  opt.share = args.real("share");
  opt.kinds.clear();
  for (const std::string& kind : args.list("kinds")) {
    try {
      opt.kinds.push_back(niah::parse_task(kind));
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("avey needles: --kinds: ") + e.what());
    }
  }
  opt.tokens = args.integer("tokens");
  opt.fill = args.on("fill");
  opt.seed = uint64_t(args.integer("seed"));
  if (opt.seq_len < 2) throw UsageError("avey needles: --seq-len must be at least 2");
  if (!(opt.share >= 0 && opt.share <= 1)) throw UsageError("avey needles: --share must be within 0..1");
  if (opt.tokens < 0) throw UsageError("avey needles: --tokens must not be negative");
  const int64_t shortest = args.integer("shortest");
  if (shortest < 0 || shortest >= opt.seq_len)
    throw UsageError(fmt::format("avey needles: --shortest must be within 0..{} (below --seq-len)", opt.seq_len - 1));

  auto tok = data::load_tokenizer(args.str("tokenizer"));
  std::vector<std::string> files = args.given("input") ? std::vector<std::string>() : data::corpus_files("moby-dick").train;
  if (args.given("input"))
    for (const std::string& path : args.list("input"))
      for (std::string& f : data::expand_path(path, {".txt"})) files.push_back(std::move(f));
  const std::vector<uint32_t> corpus = data::tokenize_files(*tok, files, "corpus");
  const std::string text = data::documents_text(files);  // sniah2 documents hide their needle in the corpus's own text

  niah::NeedleDocuments docs(*tok, opt.seq_len, text, opt.seed + 1, shortest);
  data::Progress progress("needles");
  auto on_progress = [&](double done) { progress.update(done, data::format_duration(progress.elapsed())); };
  niah::MixResult r = niah::mix_needles(corpus, docs, opt, uint32_t(tok->eot()), on_progress);
  progress.finish(fmt::format("{} tokens", r.tokens.size()));
  const std::string out = args.str("out");
  data::write_shard(out, tok->name(), r.tokens);

  const int64_t documents = r.documents[0] + r.documents[1] + r.documents[2];
  fmt::print("wrote {}: {} tokens ({}): {} windows of {}; {} needle documents (passkey {}, sniah1 {}, sniah2 {}; "
             "{:.0f} tokens on average), corpus {} tokens ({:.2f} times its {})\n",
             out, r.tokens.size(), tok->name(), (r.tokens.size() + size_t(opt.seq_len) - 1) / size_t(opt.seq_len),
             opt.seq_len, documents, r.documents[0], r.documents[1], r.documents[2],
             documents ? double(r.needle_tokens) / double(documents) : 0.0, r.corpus_tokens,
             double(r.corpus_tokens) / double(corpus.size()), corpus.size());
  return 0;
}

const RegisterCommand reg{{"needles", "write a training shard: a corpus mixed with needle documents", run_needles}};

}  // namespace
