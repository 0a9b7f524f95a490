#include "data/needle_mix.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace data::niah {

NeedleDocuments::NeedleDocuments(const Tokenizer& tok, int64_t seq_len, const std::string& essay_text, uint64_t seed,
                                 int64_t shortest)
    : tok_(tok),
      seq_len_(seq_len),
      shortest_(shortest != 0 ? shortest : std::max<int64_t>(1, seq_len / 4)),
      repeat_(Haystack::repeat()),
      essay_(Haystack::essay(essay_text)),
      rng_(seed) {
  if (shortest_ < 1 || shortest_ >= seq_len_)
    throw std::invalid_argument(fmt::format("the shortest needle document ({} tokens) must be within 1..{}", shortest_,
                                            seq_len_ - 1));
  // Tokens per haystack unit, measured on a haystack long enough for the average to settle.
  const Needle probe{"quiet-harbor", "1234567"};
  const int64_t sizes[3] = {4000, 200, 2000};  // characters, lines, words
  for (Task kind : {Task::Passkey, Task::Sniah1, Task::Sniah2}) {
    const int k = int(kind);
    const double with = double(tok_.encode_ordinary(text(kind, sizes[k], 50, "12345", probe, 0)).size());
    const double without = double(tok_.encode_ordinary(text(kind, 0, 50, "12345", probe, 0)).size());
    tokens_per_unit_[k] = std::max(1e-3, (with - without) / double(sizes[k]));
  }
}

std::string NeedleDocuments::answer(Task kind, const std::string& key, const Needle& needle) {
  return kind == Task::Passkey ? " " + key : " " + needle.value + ".";
}

std::string NeedleDocuments::text(Task kind, int64_t units, double depth, const std::string& key, const Needle& needle,
                                  int64_t start) const {
  switch (kind) {
    case Task::Passkey: return passkey_prompt(units, depth, key) + answer(kind, key, needle);
    case Task::Sniah1: return ruler_prompt(repeat_, units, depth, needle) + answer(kind, key, needle);
    case Task::Sniah2: return ruler_prompt(essay_, units, depth, needle, start) + answer(kind, key, needle);
  }
  return "";
}

std::optional<NeedleDocuments::Document> NeedleDocuments::draw(Task kind, int64_t limit, bool must_fit) {
  const int64_t target = limit <= shortest_ ? limit : shortest_ + int64_t(rng_.below(uint64_t(limit + 1 - shortest_)));
  const std::string key = std::to_string(draw_passkey(rng_));
  const Needle needle = draw_needle(rng_);
  const double depth = 100.0 * rng_.uniform();
  const int64_t start = int64_t(rng_.below(uint64_t(essay_.size())));
  auto tokens_of = [&](int64_t units) { return tok_.encode_ordinary(text(kind, units, depth, key, needle, start)); };
  const int64_t base = int64_t(tokens_of(0).size());
  if (base > limit && must_fit)
    throw std::invalid_argument(fmt::format("a {} document needs {} tokens without any haystack; --seq-len {} leaves {}",
                                            name_of(kind), base, seq_len_, limit));
  if (base > limit) return std::nullopt;
  int64_t units = std::max<int64_t>(0, int64_t(double(target - base) / tokens_per_unit_[int(kind)]));
  for (;;) {
    std::vector<int32_t> ids = tokens_of(units);
    if (int64_t(ids.size()) <= limit) {
      // The answer is its own pre-token piece after the prompt's last word, so its ids end the document.
      return Document{std::move(ids), int64_t(tok_.encode_ordinary(answer(kind, key, needle)).size())};
    }
    // Shrink in proportion to the excess (a little more, so that this rarely repeats).
    units = std::min(units - 1, int64_t(double(units) * double(limit - base) / double(int64_t(ids.size()) - base) * 0.98));
    units = std::max<int64_t>(units, 0);
  }
}

MixResult mix_needles(const std::vector<uint32_t>& corpus, NeedleDocuments& docs, const MixOptions& opt, uint32_t eot,
                      const std::function<void(double)>& progress) {
  const int64_t T = opt.seq_len;
  if (T < 2) throw std::invalid_argument("the sequence length must be at least 2");
  if (!(opt.share >= 0 && opt.share <= 1)) throw std::invalid_argument("the needle share must be within 0..1");
  if (opt.kinds.empty() && opt.share > 0) throw std::invalid_argument("no needle kinds to mix in");
  if (opt.tokens <= 0 && opt.share >= 1)
    throw std::invalid_argument("with a needle share of 1 the corpus is never read: give the shard's size in tokens");
  if (corpus.empty()) throw std::invalid_argument("the corpus is empty");

  MixResult r;
  engine::Rng rng(opt.seed);
  size_t cursor = 0;
  bool wrapped = false;  // the corpus has been read once
  auto take = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      r.tokens.push_back(corpus[cursor]);
      if (++cursor == corpus.size()) cursor = 0, wrapped = true;
    }
    r.corpus_tokens += n;
  };
  const double slots = opt.tokens > 0 ? double(opt.tokens) / double(T) : double(corpus.size()) / (double(T) * (1 - opt.share));
  size_t next_kind = 0;
  for (int64_t slot = 0; opt.tokens > 0 ? int64_t(r.tokens.size()) < opt.tokens : !wrapped; ++slot) {
    if (rng.uniform() < opt.share) {
      int64_t left = T;  // the slot's tokens not yet written
      do {
        const Task kind = opt.kinds[next_kind % opt.kinds.size()];
        std::optional<NeedleDocuments::Document> doc =
            left == T ? docs.document(kind) : docs.fitting(kind, left - 1);  // the first always fits
        if (!doc) break;
        ++next_kind;
        r.tokens.push_back(eot);
        for (int32_t id : doc->ids) r.tokens.push_back(uint32_t(id));
        r.documents[int(kind)]++;
        r.needle_tokens += int64_t(doc->ids.size());
        left -= 1 + int64_t(doc->ids.size());
      } while (opt.fill && left - 1 >= docs.shortest());
      take(left);
    } else {
      take(T);
    }
    if (progress && slot % 256 == 255) progress(std::min(1.0, double(slot + 1) / slots));
  }
  if (progress) progress(1.0);
  return r;
}

}  // namespace data::niah
