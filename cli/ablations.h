// The paper's ablations (arXiv 2506.11305, appendices B-K; docs/model.md "Ablations") as
// variants of a base config: each is the config keys it changes, computed from the base so that
// one list serves a tiny CPU model and a GPU one. `avey sweep --variants paper` trains them all.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avey/config.h"

struct Variant {
  std::string name;
  std::string study;  // what the paper varies, and where ("enricher activation (App. B)")
  std::string paper;  // what the paper kept in its place (its design), e.g. "ReLU^2"
  nlohmann::json overrides;  // config keys over the base's (model and training keys)
};

// "base" (no overrides) first, then every ablation, for a base model `base`.
std::vector<Variant> paper_variants(const avey::Config& base);
