#include "data/masking.h"

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace data {

int64_t mask_count(int64_t total, double fraction) {
  if (total < 2) throw std::invalid_argument("masking needs at least 2 tokens a micro-batch");
  const int64_t n = int64_t(std::nearbyint(fraction * double(total)));  // half to even (the default rounding mode)
  return std::min(std::max<int64_t>(n, 1), total - 1);
}

MaskedBatch mask_tokens(const std::vector<int32_t>& ids, int32_t mask_id, engine::Rng& rng, double fraction) {
  const int64_t total = int64_t(ids.size()), n = mask_count(total, fraction);
  MaskedBatch b{ids, std::vector<int32_t>(ids.size(), -100)};
  std::vector<int64_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = 0; i < n; ++i) {  // the first n places of a shuffle: a uniform n-subset
    std::swap(order[size_t(i)], order[size_t(i + int64_t(rng.below(uint64_t(total - i))))]);
    const size_t p = size_t(order[size_t(i)]);
    b.labels[p] = ids[p];
    b.input_ids[p] = mask_id;
  }
  return b;
}

}  // namespace data
