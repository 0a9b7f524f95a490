// Training data that teaches retrieval: synthetic needle documents of fewer than T tokens mixed
// into a corpus's token stream (the long-context recipe of docs/niah.md trains on it at T = 512).
//
// A needle document is an evaluation prompt of niah_prompts.h, short, followed by its answer:
//   passkey  passkey_prompt(chars, depth, key) + " " + key
//   sniah1   ruler_prompt(repeat haystack, n lines, depth, needle) + " " + value + "."
//   sniah2   ruler_prompt(essay haystack, n words from a random word of the corpus text, depth, needle)
//            + " " + value + "."
// with the depth uniform in [0, 100], keys and needles drawn from the generator's engine::Rng, and a
// size drawn uniformly in [shortest, T) tokens (shortest T/4 unless given; a smaller one puts
// easier, nearly haystack-free documents among the others): the haystack's size is estimated from
// its measured tokens per unit, then shrunk until the document has at most T - 1 tokens.
//
// Layout: the stream is cut into slots of T tokens, slot w starting at token w*T like the training
// loader's window w (data/loader.h, when trained with the same T), so a needle document is never cut.
// Each slot holds, with probability `share`, an end-of-text, a needle document (kinds in turn) and
// then corpus tokens to its end; otherwise T corpus tokens. With `fill`, a needle slot holds
// documents back to back (an end-of-text before each, each drawn in [shortest, the tokens left))
// while one of `shortest` tokens still fits, then corpus: many answers to copy in a window, at
// every distance. The corpus is read in order, from its start again when it runs out.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/niah_prompts.h"
#include "data/tokenizer.h"
#include "engine/random.h"

namespace data::niah {

class NeedleDocuments {
 public:
  // essay_text: the text sniah2 documents take their haystack from (the corpus's own text).
  // shortest: the smallest drawn size in tokens, 1..seq_len-1 (0: seq_len / 4).
  NeedleDocuments(const Tokenizer& tok, int64_t seq_len, const std::string& essay_text, uint64_t seed,
                  int64_t shortest = 0);
  struct Document {
    std::vector<int32_t> ids;   // prompt and answer, at most seq_len - 1 tokens
    int64_t answer_tokens = 0;  // the last ids that are the answer (" " + key, or " " + value + ".")
  };
  // Its size drawn in [shortest, seq_len): with the end-of-text before it, one slot of seq_len tokens.
  Document document(Task kind) { return *draw(kind, seq_len_ - 1, true); }
  // One of at most `limit` tokens (its size drawn in [shortest, limit], or `limit` when smaller);
  // none when even the document without haystack has more.
  std::optional<Document> fitting(Task kind, int64_t limit) { return draw(kind, limit, false); }
  int64_t shortest() const { return shortest_; }

 private:
  // The document behind both: when even the one without haystack has more than `limit` tokens,
  // none, or (must_fit) an error naming --seq-len.
  std::optional<Document> draw(Task kind, int64_t limit, bool must_fit);
  static std::string answer(Task kind, const std::string& key, const Needle& needle);  // what ends a document
  // The document of `units` haystack units (characters of filler, lines or words) and its token count.
  std::string text(Task kind, int64_t units, double depth, const std::string& key, const Needle& needle,
                   int64_t start) const;
  const Tokenizer& tok_;
  int64_t seq_len_, shortest_;
  Haystack repeat_, essay_;
  engine::Rng rng_;
  double tokens_per_unit_[3];  // per Task: measured on a long haystack
};

struct MixOptions {
  int64_t seq_len = 512;  // T: the training sequence length
  double share = 0.25;    // the fraction of slots that hold a needle document
  std::vector<Task> kinds = {Task::Passkey, Task::Sniah1, Task::Sniah2};
  int64_t tokens = 0;     // the shard's size (whole slots); 0: until the corpus has been read once
  uint64_t seed = 11;     // which slots hold needle documents
  bool fill = false;      // a needle slot holds documents back to back while they fit
};

struct MixResult {
  std::vector<uint32_t> tokens;
  int64_t documents[3] = {0, 0, 0};  // needle documents per Task
  int64_t needle_tokens = 0;         // their tokens (without the end-of-text before each)
  int64_t corpus_tokens = 0;         // corpus tokens used (counting repeats)
};

// progress(fraction done), called every few hundred slots.
MixResult mix_needles(const std::vector<uint32_t>& corpus, NeedleDocuments& docs, const MixOptions& opt, uint32_t eot,
                      const std::function<void(double)>& progress = nullptr);

}  // namespace data::niah
