#include "avey/block_layout.h"

#include <fmt/format.h>

namespace avey {

using namespace engine;

BlockSizes block_sizes(const std::string& op, const Tensor& h, const BlockWeights& w, const Config& cfg,
                       const Packing& pack) {
  BlockSizes s;
  s.C = cfg.context_rows(), s.S = cfg.split_size, s.half = cfg.half_tail(), s.mh = cfg.head_width();
  s.fuser_in = cfg.fuser_in(), s.m = cfg.expanded_width(), s.d = cfg.d_embed;
  s.N = pack.contexts, s.rows = pack.rows;
  auto is = [](const Tensor& t, const Shape& shape) { return t.defined() && t.shape() == shape; };
  if (!is(h, {s.rows, s.d}) || !is(w.norm_gain, {s.d}) || !is(w.enricher_w, {s.m, s.d}) || !is(w.enricher_b, {s.m}) ||
      !is(w.spatial, {s.C, s.C}) || !is(w.fuser_w, {s.d, s.fuser_in}) || !is(w.fuser_b, {s.d}))
    fail(op, fmt::format("h {} or the weights do not fit the config (d {}, m {}, C {}, fuser input {}, {} packed rows)",
                         h.describe(), s.d, s.m, s.C, s.fuser_in, s.rows));
  return s;
}

}  // namespace avey
