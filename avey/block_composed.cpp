// The composed block (avey/block.h): the layers of docs/model.md recorded op by op, autograd
// deriving the backward. Row by row steps run on the packed rows; the contextualizer on whole
// contexts (to_contexts / to_packed record the row maps).
#include "avey/block.h"
#include "avey/contextualizer.h"
#include "avey/enricher.h"
#include "avey/fuser.h"
#include "avey/norm.h"

namespace avey {

using namespace engine;

Tensor composed_block(const Tensor& h, const BlockWeights& w, const Config& cfg, const Packing& pack) {
  const int64_t N = pack.contexts, C = cfg.context_rows(), half = cfg.half_tail(), mh = cfg.head_width();
  const Tensor y = cfg.use_layernorm() ? layernorm(h, w.norm_gain, w.norm_bias, kLayerNormEps)
                                       : rms_norm_composed(h, w.norm_gain, kRmsEps);
  const Tensor z = enricher_composed(y, w.enricher_w, w.enricher_b, cfg.enricher_activation);
  std::vector<int64_t> widths{half, half};
  if (mh > 0) widths.push_back(mh);
  const std::vector<Tensor> parts = split_cols(z, widths);  // Z0 | Z1 | Zh
  const Tensor z0 = reshape(to_contexts(parts[0], pack), {N, C, half});
  const Tensor z1 = reshape(to_contexts(parts[1], pack), {N, C, half});
  Tensor c = cfg.use_attention()
                 ? attention_contextualizer(z0, z1, cfg.attention_head_size, cfg.contextualizer_activation)
                 : contextualizer_composed(z0, z1, w.spatial, cfg.dynamic, cfg.contextualizer_activation);
  c = to_packed(reshape(c, {N * C, half}), pack);
  return add(h, fuser_composed(c, mh > 0 ? parts[2] : Tensor(), w.fuser_w, w.fuser_b));
}

}  // namespace avey
