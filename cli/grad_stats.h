// The gradient study over training (avey train --grad-stats N): every N steps one JSON line in
// the run folder's grad_stats.jsonl,
//
//   {"step": s,
//    "tensors": [{"name": "blocks.0.enricher.weight", "block": 0, "grad_norm": g, "weight_norm": w,
//                 "update_ratio": u}, ...],                       (every parameter; block null outside blocks)
//    "blocks":  [{"block": 0, "grad_norm": g, "weight_norm": w, "update_ratio": u,
//                 "output_grad_norm": o}, ...]}
//
//   grad_norm         ||g||_2 of the step's gradient (summed over its micro-batches), before clipping
//   weight_norm       ||w||_2 before the step's update
//   update_ratio      ||w_after - w_before||_2 / ||w_before||_2: how far AdamW moved the tensor
//                     (0 for a zero tensor)
//   a block's norms   over all its tensors together: sqrt(sum of the tensors' squares)
//   output_grad_norm  ||dL/dh_l||_2, the gradient reaching block l's output h_l, as `avey grads`
//                     reports it for one batch; with --grad-accum, the mean over the micro-batches
//                     (data parallel: rank 0's micro-batches; the other norms are of the
//                     averaged gradient every rank applies)
//
// `avey plot` draws them as layer x step heatmaps and curves.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "avey/model.h"
#include "optim/segment.h"

// ||t||_2 in fp64, whatever the tensor's device and dtype.
double l2_norm(const engine::Tensor& t);

// The block a parameter belongs to: N of "blocks.N." (decoder) or "layers.N." (encoder).
std::optional<int64_t> block_of(const std::string& name);

class GradStats {
 public:
  GradStats(avey::Model& model, std::vector<optim::Segment> segments, int64_t every);
  // Before a step's first backward (`step`: the step about to be taken, from 1): true when the
  // step is recorded, which then hooks the block outputs.
  bool begin(int64_t step);
  void before_update();           // after backward, before clipping and the optimizer
  nlohmann::json after_update();  // the step's line; unhooks the blocks

 private:
  avey::Model& model_;
  std::vector<optim::Segment> segments_;
  int64_t every_, step_ = 0;
  std::vector<double> grad_, weight_, output_sum_;
  std::vector<int64_t> output_count_;
  engine::Tensor before_;  // the weights before the update
};
