// What the two fused block bodies (avey/block.cpp, avey/final_block.cpp) share: a block's sizes,
// checked against its weights and packing, and the layout of the fuser's input [c | Zh] (one
// matrix: c in its first h columns, Zh in its last mh), which the enricher and the
// contextualizer write in place and whose gradient [dc | dZh] the backward reads in place.
#pragma once
#include <string>

#include "avey/block.h"
#include "engine/fused_ops.h"

namespace avey {

struct BlockSizes {
  int64_t C = 0, S = 0, half = 0, mh = 0, fuser_in = 0, m = 0, d = 0;  // C, S, mt/2, mh, mt/2 + mh, e d, d
  int64_t N = 0, rows = 0;                                           // contexts, packed rows
};
// Fails with one line naming `op` when h [pack.rows, d] or the weights do not fit cfg.
BlockSizes block_sizes(const std::string& op, const engine::Tensor& h, const BlockWeights& w, const Config& cfg,
                       const Packing& pack);

// The c and Zh windows of cz = [c | Zh] (or of its gradient); Zh's is undefined without a bypass.
inline engine::Columns c_columns(const engine::Tensor& cz, const BlockSizes& s) { return {cz, 0, s.half}; }
inline engine::Columns zh_columns(const engine::Tensor& cz, const BlockSizes& s) {
  return s.mh > 0 ? engine::Columns{cz, s.half, s.mh} : engine::Columns{};
}

}  // namespace avey
