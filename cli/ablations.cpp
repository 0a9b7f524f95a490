#include "cli/ablations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace {

// A width near x, a multiple of 8 (at least 8).
int64_t width_near(double x) { return std::max<int64_t>(8, int64_t(std::lround(x / 8)) * 8); }

}  // namespace

std::vector<Variant> paper_variants(const avey::Config& c) {
  // The base is the paper's design (ReLU^2 enricher, no contextualizer activation, e = 4,
  // p = 0.5, RMSNorm, cosine schedule, dynamic, weighted, ranked); `paper` names what the paper
  // kept against each variant, so a sweep's sign can be read beside it.
  std::vector<Variant> v = {{"base", "the paper's design", "", nlohmann::json::object()}};
  for (const char* act : {"none", "relu", "gelu", "silu"})
    if (act != std::string(avey::name_of(c.enricher_activation)))
      v.push_back({fmt::format("enricher-{}", act), "enricher activation (App. B)", "ReLU^2", {{"enricher_activation", act}}});
  for (const char* act : {"relu", "relu2", "gelu", "silu"})
    if (act != std::string(avey::name_of(c.contextualizer_activation)))
      v.push_back({fmt::format("contextualizer-{}", act), "activation on A Z0 (App. C)", "none",
                   {{"contextualizer_activation", act}}});
  v.push_back({fmt::format("expansion-{}", std::max<int64_t>(1, c.expansion_factor / 2)), "expansion factor (App. D)", "e = 4", {{"expansion_factor", std::max<int64_t>(1, c.expansion_factor / 2)}}});
  v.push_back({fmt::format("expansion-{}", 2 * c.expansion_factor), "expansion factor (App. D)", "e = 4", {{"expansion_factor", 2 * c.expansion_factor}}});
  for (double p : {0.25, 0.75, 1.0})
    v.push_back({p == 1.0 ? std::string("no-bypass") : fmt::format("tail-{}", p), "tail proportion p (App. E)", "p = 0.5", {{"tail_proportion", p}}});
  // depth against width at about the same parameters in the blocks (m d grows as d^2)
  v.push_back({"deeper-narrower", "depth vs width (App. F)", "its presets' shapes",
               {{"n_layers", 2 * c.n_layers}, {"d_embed", width_near(double(c.d_embed) / std::sqrt(2.0))}}});
  v.push_back({"shallower-wider", "depth vs width (App. F)", "its presets' shapes",
               {{"n_layers", std::max<int64_t>(1, c.n_layers / 2)}, {"d_embed", width_near(double(c.d_embed) * std::sqrt(2.0))}}});
  v.push_back({"split-half", "split size S (App. G)", "S = 64",
               {{"split_size", std::max<int64_t>(1, c.split_size / 2)}}});
  v.push_back({"top-k-half", "retrieved splits k (App. G)", "k = 7", {{"top_k", c.top_k / 2}}});
  v.push_back({"top-k-double", "retrieved splits k (App. G)", "k = 7", {{"top_k", 2 * c.top_k}}});
  v.push_back({"seq-len-double", "sequence length T (App. G)", "T = 512",
               {{"seq_len", 2 * c.seq_len}}});
  v.push_back({"layernorm", "normalisation (App. H)", "RMSNorm", {{"norm", "layernorm"}}});
  v.push_back({"constant-lr", "learning-rate schedule (App. I)", "cosine", {{"schedule", "constant"}}});
  v.push_back({"no-dynamic", "dynamic parameterisation (App. K)", "dynamic", {{"dynamic", false}}});
  v.push_back({"no-weighting", "weighting of selected splits (App. K)", "weighted", {{"split_weighting", false}}});
  v.push_back({"no-ranker", "the ranker (App. K)", "the ranker", {{"ranker", false}}});
  // causal softmax attention over the same context, heads of 64 columns (fewer in a tiny model)
  const int64_t half = c.half_tail(), head = half % 64 == 0 ? 64 : half;
  v.push_back({"attention", "self-attention as contextualizer (App. K)", "the contextualizer",
               {{"contextualizer", "attention"}, {"attention_head_size", head}}});
  return v;
}
