#include "optim/segment.h"

#include <algorithm>
#include <stdexcept>

namespace optim {

void check_segments(const std::vector<Segment>& segments, int64_t total) {
  std::vector<const Segment*> sorted;
  for (const Segment& s : segments) {
    if (s.offset < 0 || s.numel < 0 || s.offset + s.numel > total)
      throw std::invalid_argument("optim: segment '" + s.name + "' [" + std::to_string(s.offset) + ", " +
                                  std::to_string(s.offset + s.numel) + ") lies outside the flat buffer of " +
                                  std::to_string(total) + " elements");
    sorted.push_back(&s);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const Segment& a = *sorted[i - 1];
    const Segment& b = *sorted[i];
    if (a.numel > 0 && b.numel > 0 && a.offset + a.numel > b.offset)
      throw std::invalid_argument("optim: segments '" + a.name + "' and '" + b.name + "' overlap");
  }
}

Segment segment_of(const std::string& name, const engine::Tensor& view, const engine::Tensor& flat) {
  if (view.impl()->storage != flat.impl()->storage)
    throw std::invalid_argument("segment_of: '" + name + "' is not a view into the flat parameter buffer");
  return {name, view.impl()->offset - flat.impl()->offset, view.numel(), view.ndim() >= 2};
}

}  // namespace optim
