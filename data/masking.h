// Masked language modelling's batches (Avey-B, docs/model.md section 2; the reference's loader):
// of a micro-batch's B T ids, exactly n = round(fraction B T) positions (half to even, as Python's
// round; clamped to [1, B T - 1]) are drawn uniformly without replacement over the flattened
// block and all replaced by the mask id (no 80/10/10 split); the labels are the original ids
// there and -100 elsewhere.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/random.h"

namespace data {

constexpr double kMaskFraction = 0.2;

int64_t mask_count(int64_t total, double fraction = kMaskFraction);

struct MaskedBatch {
  std::vector<int32_t> input_ids, labels;  // B T each, row-major
};
// The n = mask_count(total) positions to mask among 0 .. total - 1, drawn from rng (a partial
// Fisher-Yates shuffle: every n-subset equally likely), in the order drawn.
std::vector<int64_t> mask_positions(int64_t total, engine::Rng& rng, double fraction = kMaskFraction);
// ids: the B T ids of one micro-batch, masked at mask_positions(B T, rng).
MaskedBatch mask_tokens(const std::vector<int32_t>& ids, int32_t mask_id, engine::Rng& rng,
                        double fraction = kMaskFraction);

}  // namespace data
