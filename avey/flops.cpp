#include "avey/flops.h"

namespace avey {

static double encoder_flops_per_token(const Config& c) {
  const double d = double(c.d_embed), S = double(c.split_size), C = double(c.context_rows());
  const double statics = double((c.n_layers + 1) / 2), dynamics = double(c.n_layers) - statics;
  const double layer = 2 * d * 4 * d + 2 * 3 * d * d;
  return 2 * C * d + statics * (layer + 2 * S * d) + dynamics * (layer + 4 * S * d);
}

static double block_flops_per_token(const Config& c) {
  if (c.is_encoder()) return encoder_flops_per_token(c);
  const double d = double(c.d_embed), m = double(c.expanded_width()), half = double(c.half_tail());
  const double C = double(c.context_rows()), S = double(c.split_size);
  const double mixing = 2 * C * half, cosine = c.dynamic || c.use_attention() ? 2 * C * half : 0.0;
  const double per_row = 2 * d * m + mixing + cosine + 2 * double(c.fuser_in()) * d;
  return double(c.n_layers) * per_row * C / S;
}

static double ranker_flops_per_token(const Config& c, int64_t seq_len) {
  if (!c.ranker && !c.is_encoder()) return 0;
  const double S = double(c.split_size), n = double((seq_len + c.split_size - 1) / c.split_size);
  return (n - 1) * S * double(c.d_embed);
}

double forward_flops_per_token(const Config& c, int64_t seq_len) {
  return block_flops_per_token(c) + 2.0 * double(c.d_embed) * double(c.vocab_size) + ranker_flops_per_token(c, seq_len);
}

double train_flops_per_token(const Config& c, int64_t seq_len) {
  return 3 * (block_flops_per_token(c) + 2.0 * double(c.d_embed) * double(c.vocab_size)) +
         ranker_flops_per_token(c, seq_len);
}

}  // namespace avey
