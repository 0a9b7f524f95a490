// Sampling (cli/sampling.h): temperature 0 is the arg-max, top-k and top-p (nucleus) keep only the
// likeliest ids, the vocabulary limit keeps ids past the tokenizer out, and a seed repeats a draw.
#include "cli/sampling.h"

#include <cmath>
#include <set>

#include "tests/testing.h"

namespace {

// The ids drawn over many tries.
std::set<int32_t> drawn(const std::vector<float>& logits, SampleOptions opt) {
  engine::Rng rng(5);
  std::set<int32_t> ids;
  for (int i = 0; i < 2000; ++i) ids.insert(pick_token(logits, opt, rng));
  return ids;
}

}  // namespace

TEST_CASE("sampling: greedy, top-k, top-p and the vocabulary limit") {
  // probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 (ids in another order)
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  SampleOptions opt{.max_new_tokens = 1, .temperature = 1.0};
  CHECK(drawn(logits, opt) == std::set<int32_t>{0, 1, 2, 3});
  opt.temperature = 0;
  CHECK(drawn(logits, opt) == std::set<int32_t>{1});
  opt.temperature = 1, opt.top_k = 2;
  CHECK(drawn(logits, opt) == std::set<int32_t>{1, 3});
  opt.top_k = 0, opt.top_p = 0.5;  // 0.5 alone reaches it
  CHECK(drawn(logits, opt) == std::set<int32_t>{1});
  opt.top_p = 0.6;  // 0.5 does not: 0.5 + 0.3
  CHECK(drawn(logits, opt) == std::set<int32_t>{1, 3});
  opt.top_p = 0.9;
  CHECK(drawn(logits, opt) == std::set<int32_t>{0, 1, 3});
  opt.top_k = 2;  // top-k first, then top-p over what it kept: 0.5 / 0.8 < 0.9
  CHECK(drawn(logits, opt) == std::set<int32_t>{1, 3});
  opt.top_k = 0, opt.top_p = 1e-9;  // at least one id always remains
  CHECK(drawn(logits, opt) == std::set<int32_t>{1});
  opt.top_p = 1, opt.vocab_limit = 3;
  CHECK(drawn(logits, opt) == std::set<int32_t>{0, 1, 2});
  opt.temperature = 0, opt.vocab_limit = 1;
  CHECK(drawn(logits, opt) == std::set<int32_t>{0});
}

TEST_CASE("sampling: the same seed draws the same ids") {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
  SampleOptions opt{.max_new_tokens = 1, .temperature = 0.8, .top_k = 20, .top_p = 0.9};
  engine::Rng a(42), b(42);
  for (int i = 0; i < 100; ++i) CHECK(pick_token(logits, opt, a) == pick_token(logits, opt, b));
}
