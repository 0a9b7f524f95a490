#include "avey/ranker.h"

#include <algorithm>
#include <numeric>

namespace avey {

using namespace engine;

std::vector<double> host_doubles(const Tensor& t) {
  return t.detach().to(Device::CPU).to(DType::F64).to_vector<double>();
}

Tensor maxsim_scores(const Tensor& xq, const Tensor& xc, int64_t S) {
  if (xq.ndim() != 3 || xc.ndim() != 3 || xq.size(1) % S || xc.size(1) % S || xq.size(0) != xc.size(0))
    fail("maxsim_scores", "expected [B, R*S, d] and [B, J*S, d] with S = " + std::to_string(S) + ", got " +
                              xq.describe() + " and " + xc.describe());
  const int64_t B = xq.size(0), R = xq.size(1) / S, J = xc.size(1) / S;
  Tensor qn = l2norm_rows(xq, kRankerEps, NormEps::Outside);
  Tensor cn = xc.impl() == xq.impl() ? qn : l2norm_rows(xc, kRankerEps, NormEps::Outside);
  Tensor sims = matmul(qn, cn, false, true);                 // [B, R*S, J*S]
  Tensor best = max_cols(reshape(sims, {B * R * S * J, S}));  // max over the rows u of split j
  Tensor per_row = transpose(reshape(best, {B * R, S, J}));  // [B*R, J, S]
  return reshape(sum_cols(per_row), {B, R, J});              // sum over the rows t of split i
}

bool ContextPlan::weighted() const {
  return std::any_of(score_index.begin(), score_index.end(), [](int32_t i) { return i >= 0; });
}

ContextPlan plan_contexts(const Config& cfg, int64_t B, int64_t n, const std::vector<int64_t>& query_split,
                          const std::vector<double>& scores, int64_t J) {
  ContextPlan p;
  const int64_t R = int64_t(query_split.size()), k = cfg.top_k, K = k + 1;
  p.batch = B, p.table_splits = n, p.queries = R, p.slots = K, p.score_cols = J;
  const size_t total = size_t(B * R * K);
  p.split.assign(total, 0);
  p.weight.assign(total, 0.0);
  p.score_index.assign(total, -1);
  p.norm_index.assign(total, -1);
  p.norm.assign(total, 1.0);
  p.empty_slots.assign(size_t(B * R), 0);
  const bool weighted = cfg.ranker && cfg.split_weighting;
  if (cfg.ranker && int64_t(scores.size()) != B * R * J)
    throw std::invalid_argument("plan_contexts: " + std::to_string(scores.size()) + " scores for [" +
                                std::to_string(B) + ", " + std::to_string(R) + ", " + std::to_string(J) + "]");
  std::vector<int64_t> cand, chosen;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t q = query_split[size_t(r)];
      const int64_t base = (b * R + r) * K;  // first slot of this context
      const int64_t srow = (b * R + r) * J;  // first score of this query
      chosen.clear();
      if (cfg.ranker) {
        cand.resize(size_t(std::max<int64_t>(0, std::min(q, J))));
        std::iota(cand.begin(), cand.end(), 0);
        // highest score first; equal scores keep ascending j (the lower j wins)
        std::stable_sort(cand.begin(), cand.end(),
                         [&](int64_t a, int64_t c) { return scores[size_t(srow + a)] > scores[size_t(srow + c)]; });
        chosen.assign(cand.begin(), cand.begin() + std::min<int64_t>(int64_t(cand.size()), k));
        std::sort(chosen.begin(), chosen.end());
      } else {
        for (int64_t j = std::max<int64_t>(0, q - k); j < q; ++j) chosen.push_back(j);
      }
      const int64_t rsel = int64_t(chosen.size());
      p.empty_slots[size_t(b * R + r)] = int32_t(k - rsel);
      // the norm: the largest selected score (first arg-max = earliest split) or the earliest's
      int64_t norm_j = -1;
      if (weighted && rsel > 0) {
        norm_j = chosen[0];
        if (cfg.ranker_weight_norm == "max")
          for (int64_t j : chosen)
            if (scores[size_t(srow + j)] > scores[size_t(srow + norm_j)]) norm_j = j;
      }
      for (int64_t s = 0; s < rsel; ++s) {
        const size_t slot = size_t(base + (k - rsel) + s);  // empty slots come first
        const int64_t j = chosen[size_t(s)];
        p.split[slot] = int32_t(b * n + j);
        if (weighted) {
          const double norm = scores[size_t(srow + norm_j)] + kRankerEps;
          p.weight[slot] = scores[size_t(srow + j)] / norm;
          p.score_index[slot] = int32_t(srow + j);
          p.norm_index[slot] = int32_t(srow + norm_j);
          p.norm[slot] = norm;
        } else {
          p.weight[slot] = 1.0;
        }
      }
      const size_t cur = size_t(base + k);  // the last slot: the split itself
      p.split[cur] = int32_t(b * n + q);
      p.weight[cur] = 1.0;
    }
  }
  return p;
}

namespace {

void check_plan(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  if (splits.ndim() != 2 || splits.size(0) != plan.batch * plan.table_splits)
    fail("build_contexts", "splits must be [" + std::to_string(plan.batch * plan.table_splits) + ", S*d], got " +
                               splits.describe());
  if (scores.defined() && scores.numel() != plan.batch * plan.queries * plan.score_cols)
    fail("build_contexts", "scores " + scores.describe() + " do not match the plan");
}

Tensor index_tensor(const ContextPlan& plan, Device device) {
  return Tensor::from(plan.split, {int64_t(plan.split.size())}, device);
}

Tensor column(const std::vector<double>& v, const Tensor& like) {
  return Tensor::from(v, {int64_t(v.size()), 1}).to(like.dtype()).to(like.device());
}

}  // namespace

Tensor build_contexts_composed(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  check_plan(splits, scores, plan);
  Tensor gathered = gather_rows(splits, index_tensor(plan, splits.device()));
  const size_t total = plan.split.size();
  std::vector<double> constant(total);
  for (size_t s = 0; s < total; ++s) constant[s] = plan.score_index[s] >= 0 ? 0.0 : plan.weight[s];
  Tensor w = column(constant, splits);
  if (scores.defined() && plan.weighted()) {
    // scores as a column with two extra rows: a zero (numerator of constant slots) and a one
    // (their norm), so one gather gives every slot's numerator and one its norm.
    const int64_t ns = scores.numel();
    Tensor table = concat_rows({reshape(scores, {ns, 1}), Tensor::zeros({1, 1}, scores.dtype(), scores.device()),
                                Tensor::full({1, 1}, 1.0, scores.dtype(), scores.device())});
    std::vector<int32_t> num(total), den(total);
    for (size_t s = 0; s < total; ++s) {
      num[s] = plan.score_index[s] >= 0 ? plan.score_index[s] : int32_t(ns);
      den[s] = plan.norm_index[s] >= 0 ? plan.norm_index[s] : int32_t(ns + 1);
    }
    Tensor numer = gather_rows(table, Tensor::from(num, {int64_t(total)}, splits.device()));
    Tensor denom = add_scalar(gather_rows(table, Tensor::from(den, {int64_t(total)}, splits.device())), kRankerEps);
    w = add(div(numer, denom), w);
  }
  return mul(gathered, w);
}

Tensor build_contexts(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  check_plan(splits, scores, plan);
  Tensor index = index_tensor(plan, splits.device());
  Tensor out;
  {
    NoGrad no_grad;
    out = mul(gather_rows(splits, index), column(plan.weight, splits));
  }
  Tensor sc = plan.weighted() ? scores : Tensor();
  record(out, "avey.build_contexts", {splits, sc}, [splits, sc, index, plan](const Tensor& g) -> std::vector<Tensor> {
    const int64_t B = plan.batch, n = plan.table_splits, RK = plan.queries * plan.slots, row = splits.size(1);
    Tensor gx, gs;
    if (splits.requires_grad()) {
      // P [B, R*K, n]: w at (slot, split); dX = P^T dH per sequence.
      std::vector<double> p(size_t(B * RK * n), 0.0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < RK; ++s) {
          const size_t slot = size_t(b * RK + s);
          if (plan.weight[slot] != 0.0) p[size_t((b * RK + s) * n + (plan.split[slot] - b * n))] += plan.weight[slot];
        }
      Tensor pm = Tensor::from(p, {B, RK, n}).to(splits.dtype()).to(splits.device());
      gx = reshape(matmul(pm, reshape(g, {B, RK, row}), true, false), {B * n, row});
    }
    if (sc.defined() && sc.requires_grad()) {
      std::vector<double> dw = host_doubles(sum_cols(mul(g, gather_rows(splits, index))));
      std::vector<double> ds(size_t(sc.numel()), 0.0);
      for (size_t s = 0; s < dw.size(); ++s) {
        if (plan.score_index[s] < 0) continue;
        ds[size_t(plan.score_index[s])] += dw[s] / plan.norm[s];
        ds[size_t(plan.norm_index[s])] -= dw[s] * plan.weight[s] / plan.norm[s];
      }
      gs = Tensor::from(ds, sc.shape()).to(sc.dtype()).to(sc.device());
    }
    return {gx, gs};
  });
  return out;
}

}  // namespace avey
