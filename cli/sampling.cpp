#include "cli/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/autograd.h"

// Picks the next id from logits: temperature scaling, top-k truncation, top-p (nucleus)
// truncation, then a draw from the softmax of what is left (or the arg-max at temperature 0).
// Top-p keeps, in order of probability, the fewest ids whose probability (after top-k) sums to at
// least top_p, as Hugging Face's TopPLogitsWarper; at least one id always remains.
int32_t pick_token(std::vector<float> logits, const SampleOptions& opt, engine::Rng& rng) {
  if (opt.vocab_limit > 0 && int64_t(logits.size()) > opt.vocab_limit) logits.resize(size_t(opt.vocab_limit));
  if (opt.temperature <= 0) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  size_t k = opt.top_k > 0 ? std::min(size_t(opt.top_k), order.size()) : order.size();
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(),
                    [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  double top = logits[size_t(order[0])];
  std::vector<double> p(k);
  double total = 0;
  for (size_t i = 0; i < k; ++i) total += p[i] = std::exp((logits[size_t(order[i])] - top) / opt.temperature);
  if (opt.top_p < 1) {
    double kept = 0;
    size_t n = 0;
    do kept += p[n++];
    while (n < k && kept < opt.top_p * total);
    k = n;
    total = kept;
  }
  double u = rng.uniform() * total;
  for (size_t i = 0; i < k; ++i) {
    if ((u -= p[i]) <= 0) return order[i];
  }
  return order[k - 1];
}

std::vector<int32_t> sample(avey::Model& model, std::vector<int32_t>& ids, const SampleOptions& opt, engine::Rng& rng,
                            const std::function<void(int32_t)>& on_token) {
  engine::NoGrad no_grad;
  std::vector<int32_t> produced;
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    engine::Tensor logits = model.next_token_logits(ids).to(engine::Device::CPU).to(engine::DType::F32);
    int32_t next = pick_token(logits.to_vector<float>(), opt, rng);
    ids.push_back(next);
    produced.push_back(next);
    if (on_token) on_token(next);
    if (next == opt.stop_token) break;
  }
  return produced;
}
