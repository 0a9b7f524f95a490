#include "cli/grad_stats.h"

#include <cmath>
#include <cstdio>

#include "engine/ops.h"
#include "optim/clip.h"

double l2_norm(const engine::Tensor& t) {
  double s = 0;
  for (double x : t.to(engine::Device::CPU).to(engine::DType::F64).to_vector<double>()) s += x * x;
  return std::sqrt(s);
}

std::optional<int64_t> block_of(const std::string& name) {
  for (const char* prefix : {"blocks.", "layers."}) {
    long long n = 0;
    int used = 0;
    if (name.rfind(prefix, 0) == 0 && std::sscanf(name.c_str() + std::string(prefix).size(), "%lld.%n", &n, &used) == 1 &&
        used > 0)
      return int64_t(n);
  }
  return std::nullopt;
}

GradStats::GradStats(avey::Model& model, std::vector<optim::Segment> segments, int64_t every)
    : model_(model), segments_(std::move(segments)), every_(every) {}

bool GradStats::begin(int64_t step) {
  if (every_ <= 0 || (step % every_ != 0 && step != 1)) return false;
  step_ = step;
  const size_t L = size_t(model_.config().n_layers);
  output_sum_.assign(L, 0.0);
  output_count_.assign(L, 0);
  model_.set_block_hook([this](int64_t layer, const engine::Tensor& g) {
    output_sum_[size_t(layer)] += l2_norm(g);
    output_count_[size_t(layer)]++;
  });
  return true;
}

void GradStats::before_update() {
  grad_ = optim::segment_norms(model_.flat_grads(), segments_);
  weight_ = optim::segment_norms(model_.flat_params(), segments_);
  before_ = model_.flat_params().clone();
}

nlohmann::json GradStats::after_update() {
  model_.set_block_hook(nullptr);
  const std::vector<double> moved = optim::segment_norms(engine::sub(model_.flat_params(), before_), segments_);
  before_ = engine::Tensor();
  const size_t L = output_sum_.size();
  // per block: sums of squares, then their roots
  std::vector<double> g2(L), w2(L), m2(L);
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < segments_.size(); ++i) {
    const std::optional<int64_t> block = block_of(segments_[i].name);
    tensors.push_back({{"name", segments_[i].name},
                       {"block", block ? nlohmann::json(*block) : nlohmann::json()},
                       {"grad_norm", grad_[i]},
                       {"weight_norm", weight_[i]},
                       {"update_ratio", weight_[i] > 0 ? moved[i] / weight_[i] : 0.0}});
    if (block && size_t(*block) < L) {
      g2[size_t(*block)] += grad_[i] * grad_[i];
      w2[size_t(*block)] += weight_[i] * weight_[i];
      m2[size_t(*block)] += moved[i] * moved[i];
    }
  }
  nlohmann::json blocks = nlohmann::json::array();
  for (size_t l = 0; l < L; ++l)
    blocks.push_back({{"block", l},
                      {"grad_norm", std::sqrt(g2[l])},
                      {"weight_norm", std::sqrt(w2[l])},
                      {"update_ratio", w2[l] > 0 ? std::sqrt(m2[l] / w2[l]) : 0.0},
                      {"output_grad_norm", output_count_[l] ? output_sum_[l] / double(output_count_[l]) : 0.0}});
  return {{"step", step_}, {"tensors", tensors}, {"blocks", blocks}};
}
