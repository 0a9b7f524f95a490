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

std::vector<int64_t> mask_positions(int64_t total, engine::Rng& rng, double fraction) {
  const int64_t n = mask_count(total, fraction);
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = 0; i < n; ++i)  // the first n places of a shuffle: a uniform n-subset
    std::swap(order[size_t(i)], order[size_t(i + int64_t(rng.below(uint64_t(total - i))))]);
  order.resize(size_t(n));
  return order;
}

MaskedBatch mask_tokens(const std::vector<int32_t>& ids, int32_t mask_id, engine::Rng& rng, double fraction) {
  MaskedBatch b{ids, std::vector<int32_t>(ids.size(), -100)};
  for (const int64_t p : mask_positions(int64_t(ids.size()), rng, fraction)) {
    b.labels[size_t(p)] = ids[size_t(p)];
    b.input_ids[size_t(p)] = mask_id;
  }
  return b;
}

}  // namespace data
