// Segment: one named parameter tensor inside the model's flat parameter buffer (and, at the same
// offset, inside the flat gradient buffer). The model owns the table; optim/ reads it to know
// which elements take weight decay and to report per-tensor gradient norms.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace optim {

struct Segment {
  std::string name;     // the tensor's public name, e.g. "layers.0.enricher.weight"
  int64_t offset = 0;   // first element in the flat buffer
  int64_t numel = 0;    // number of elements
  bool decay = false;   // takes weight decay: the tensor has rank >= 2 (docs/model.md: E, U, O, V_l)
};

// The segment of a parameter that is a view into the flat buffer `flat`: decay iff rank >= 2.
Segment segment_of(const std::string& name, const engine::Tensor& view, const engine::Tensor& flat);

// Checks that every segment lies inside [0, total) and that no two overlap; throws
// std::invalid_argument naming the offending segment(s). Gaps between segments are allowed.
void check_segments(const std::vector<Segment>& segments, int64_t total);

}  // namespace optim
