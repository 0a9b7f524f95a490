// evaluate(): windows in batches, per-id losses from the logits, sums per window, ratio
// estimates with their standard errors.
#include "cli/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <tuple>
#include <stdexcept>
#include <vector>

#include "data/masking.h"
#include "data/progress.h"
#include "engine/autograd.h"
#include "engine/fused_ops.h"

namespace {

using engine::Tensor;

// -log softmax(logits[r])[targets[r]] for each row of logits [R, V] (on the model's device), in
// fp32 or fp64 (0 where the target is -100), and whether the row's arg-max is its target, in row
// chunks that keep the temporaries small.
struct TokenScores {
  std::vector<double> nll;
  std::vector<bool> correct;
};
TokenScores score_tokens(const Tensor& logits, const std::vector<int32_t>& targets) {
  const int64_t R = logits.size(0), V = logits.size(1), chunk = std::max<int64_t>(1, (int64_t(1) << 26) / V);
  TokenScores out;
  out.nll.reserve(size_t(R));
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    const int64_t rows = std::min(chunk, R - r0);
    Tensor x = engine::slice_rows(logits, r0, r0 + rows);
    if (x.dtype() == engine::DType::BF16) x = engine::cast(x, engine::DType::F32);
    const std::vector<int32_t> t(targets.begin() + r0, targets.begin() + r0 + rows);
    Tensor loss = Tensor::empty({rows}, x.dtype(), x.device());
    engine::cross_entropy_rows(x, Tensor::from(t, {rows}, x.device()), -100, loss);
    std::vector<double> nll = loss.to(engine::Device::CPU).to(engine::DType::F64).to_vector<double>();
    out.nll.insert(out.nll.end(), nll.begin(), nll.end());
    const std::vector<int32_t> best = engine::row_argmax(x).to(engine::Device::CPU).to_vector<int32_t>();
    for (int64_t i = 0; i < rows; ++i) out.correct.push_back(best[size_t(i)] == t[size_t(i)]);
  }
  return out;
}

// The ratio sum(a) / sum(b) over windows and its standard error (evaluate.h).
std::pair<double, double> ratio_with_error(const std::vector<double>& a, const std::vector<double>& b) {
  double sa = 0, sb = 0;
  for (size_t w = 0; w < a.size(); ++w) sa += a[w], sb += b[w];
  const double r = sa / sb;
  const double W = double(a.size());
  if (a.size() < 2) return {r, NAN};
  double ss = 0;
  for (size_t w = 0; w < a.size(); ++w) ss += (a[w] - r * b[w]) * (a[w] - r * b[w]);
  return {r, std::sqrt(ss / (W * (W - 1))) / (sb / W)};
}

struct Window {
  uint64_t start;
  int64_t length;  // ids predicted: the window holds length + 1 ids
};

std::vector<Window> choose_windows(uint64_t N, int64_t T, int64_t B, int64_t max_batches) {
  const uint64_t W = (N - 1) / uint64_t(T), tail = (N - 1) % uint64_t(T);
  const uint64_t all = W + (tail > 0);
  std::vector<Window> out;
  if (max_batches == 0 || uint64_t(max_batches) >= (all + uint64_t(B) - 1) / uint64_t(B)) {
    for (uint64_t w = 0; w < W; ++w) out.push_back({w * uint64_t(T), T});
    if (tail > 0) out.push_back({W * uint64_t(T), int64_t(tail)});
  } else {
    const uint64_t n = uint64_t(max_batches) * uint64_t(B);
    for (uint64_t i = 0; i < n; ++i) out.push_back({uint64_t((unsigned __int128)i * W / n) * uint64_t(T), T});
  }
  return out;
}

}  // namespace

EvalResult evaluate(avey::Model& model, const data::TokenStream& tokens, int64_t batch_size, int64_t seq_len,
                    int64_t max_batches, const data::Tokenizer* tokenizer, const std::string& progress_label) {
  if (batch_size < 1 || seq_len < 1)
    throw std::runtime_error(fmt::format("evaluate: batch size {} and sequence length {} must be positive", batch_size, seq_len));
  if (max_batches < 0) throw std::runtime_error(fmt::format("evaluate: max batches {} must not be negative", max_batches));
  if (tokens.size() < 2)
    throw std::runtime_error(fmt::format("evaluate: {} tokens leave nothing to predict (needs at least 2)", tokens.size()));
  engine::NoGrad no_grad;
  const engine::Device dev = model.flat_params().device();
  const std::vector<Window> windows = choose_windows(tokens.size(), seq_len, batch_size, max_batches);

  // Bytes of each id's text (0 for end-of-text and ids the tokenizer does not have).
  std::vector<int64_t> id_bytes;
  if (tokenizer)
    for (int32_t id = 0; id < model.config().vocab_size; ++id)
      id_bytes.push_back(id < tokenizer->vocab_size() && id != tokenizer->eot() ? int64_t(tokenizer->decode({id}).size()) : 0);

  std::vector<double> nats, ids, text_nats, bytes, correct;  // per window
  const avey::Config& cfg = model.config();
  data::Progress progress(progress_label);
  std::vector<uint32_t> window;
  int64_t predicted = 0;
  for (size_t first = 0; first < windows.size();) {
    const int64_t T = windows[first].length;
    size_t last = first;
    while (last < windows.size() && last - first < size_t(batch_size) && windows[last].length == T) ++last;
    const int64_t B = int64_t(last - first);
    std::vector<int32_t> inputs(size_t(B * T)), targets(size_t(B * T));
    window.resize(size_t(T + 1));
    for (int64_t b = 0; b < B; ++b) {
      const uint64_t start = windows[first + size_t(b)].start;
      tokens.read(start, uint64_t(T + 1), window.data());
      for (uint32_t id : window)  // the model checks its inputs; the last target is only read here
        if (id >= uint32_t(cfg.vocab_size))
          throw std::runtime_error(fmt::format("evaluate: token id {} is outside the vocabulary [0, {})", id, cfg.vocab_size));
      if (cfg.is_encoder()) {  // the window's own ids, masked as in training, the same every time
        engine::Rng rng(start * 0x9E3779B97F4A7C15ull + 11);
        const data::MaskedBatch m = data::mask_tokens(std::vector<int32_t>(window.begin(), window.end() - 1),
                                                      int32_t(cfg.mask_id), rng);
        std::copy(m.input_ids.begin(), m.input_ids.end(), inputs.begin() + b * T);
        std::copy(m.labels.begin(), m.labels.end(), targets.begin() + b * T);
      } else {
        std::copy(window.begin(), window.end() - 1, inputs.begin() + b * T);
        std::copy(window.begin() + 1, window.end(), targets.begin() + b * T);
      }
    }
    Tensor logits = model.logits(Tensor::from(inputs, {B, T}, dev));
    const TokenScores s = score_tokens(engine::reshape(logits, {B * T, logits.size(-1)}), targets);
    for (int64_t b = 0; b < B; ++b) {
      double a = 0, at = 0, by = 0, n_ids = 0, hits = 0;
      for (int64_t t = b * T; t < (b + 1) * T; ++t) {
        const int32_t target = targets[size_t(t)];
        if (target < 0) continue;  // not predicted (an encoder's unmasked ids)
        const double loss = s.nll[size_t(t)];
        const int64_t n = tokenizer ? id_bytes[size_t(target)] : 0;
        a += loss, n_ids += 1, hits += s.correct[size_t(t)];
        if (n > 0) at += loss, by += double(n);
      }
      nats.push_back(a), ids.push_back(n_ids), text_nats.push_back(at), bytes.push_back(by), correct.push_back(hits);
    }
    first = last;
    predicted += B * T;
    progress.update(double(first) / double(windows.size()),
                    fmt::format("{}/{} windows | {:.0f} tok/s", first, windows.size(), double(predicted) / std::max(progress.elapsed(), 1e-9)));
  }

  EvalResult r;
  r.windows = int64_t(windows.size());
  r.bytes = int64_t(std::accumulate(bytes.begin(), bytes.end(), 0.0));
  r.tokens = int64_t(std::accumulate(ids.begin(), ids.end(), 0.0));
  std::tie(r.loss, r.loss_se) = ratio_with_error(nats, ids);
  std::tie(r.accuracy, r.accuracy_se) = ratio_with_error(correct, ids);
  if (tokenizer && r.bytes > 0) {
    std::tie(r.bpb, r.bpb_se) = ratio_with_error(text_nats, bytes);
    r.bpb /= std::log(2.0);
    r.bpb_se /= std::log(2.0);
  }
  progress.finish(fmt::format("{} windows, {} tokens", r.windows, r.tokens));
  return r;
}
