#include "avey/ranker.h"

#include "avey/kernels/kernels.h"
#include "avey/kernels/selection_math.h"
#include "engine/dispatch.h"

namespace avey {

using namespace engine;

namespace {

// best[b, t, j] = max over u of (qn_b cn_b^T)[t, j S + u] ([B, R*S, J] flattened): the product and
// the max, recorded as one op whose backward touches only the arg-max similarities
// (kernels' maxsim_backward) instead of two dense products with a mostly zero matrix.
Tensor maxsim_best(const Tensor& qn, const Tensor& cn, int64_t S) {
  const int64_t B = qn.size(0), rs = qn.size(1), js = cn.size(1), d = qn.size(2), J = js / S;
  Tensor best = Tensor::empty({B * rs * J}, qn.dtype(), qn.device());
  Tensor argmax = Tensor::empty({B * rs * J}, DType::I32, qn.device());
  {
    NoGrad no_grad;
    Tensor sims = matmul(qn, cn, false, true);  // [B, R*S, J*S]
    AVEY_DISPATCH("maxsim_scores", sims, row_max, B * rs * J, S, sims.data<T>(), best.data<T>(),
                  argmax.data<int32_t>());
  }
  record(best, "avey.maxsim", {qn, cn}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gq = Tensor::empty(qn.shape(), g.dtype(), g.device()), gc = Tensor::empty(cn.shape(), g.dtype(), g.device());
    AVEY_DISPATCH_IN(::avey::kernels, "maxsim_scores", g, maxsim_backward,
                     {.batch = B, .rs = rs, .js = js, .S = S, .d = d, .q = qn.data<T>(), .c = cn.data<T>(),
                      .argmax = argmax.data<int32_t>(), .g = g.data<T>(), .dq = gq.data<T>(), .dc = gc.data<T>()});
    return {qn.requires_grad() ? gq : Tensor(), cn.requires_grad() ? gc : Tensor()};
  });
  return best;
}

}  // namespace

double ranker_eps(const Config& cfg) { return cfg.is_encoder() ? cfg.eps : kRankerEps; }

Tensor maxsim_scores(const Tensor& xq, const Tensor& xc, int64_t S, double eps) {
  if (xq.ndim() != 3 || xc.ndim() != 3 || xq.size(1) % S || xc.size(1) % S || xq.size(0) != xc.size(0) ||
      xq.size(2) != xc.size(2))
    fail("maxsim_scores", "expected [B, R*S, d] and [B, J*S, d] with S = " + std::to_string(S) + ", got " +
                              xq.describe() + " and " + xc.describe());
  const int64_t B = xq.size(0), R = xq.size(1) / S, J = xc.size(1) / S;
  Tensor qn = l2norm_rows(xq, eps, NormEps::Outside);
  Tensor cn = xc.impl() == xq.impl() ? qn : l2norm_rows(xc, eps, NormEps::Outside);
  Tensor best = maxsim_best(qn, cn, S);                      // max over the rows u of split j
  Tensor per_row = transpose(reshape(best, {B * R, S, J}));  // [B*R, J, S]
  return reshape(row_sums(per_row), {B, R, J});              // sum over the rows t of split i
}

ContextPlan select_contexts(const Config& cfg, int64_t B, int64_t n, const std::vector<int64_t>& query_split,
                            const Tensor& scores, int64_t J, Device device) {
  ContextPlan p;
  const int64_t R = int64_t(query_split.size()), k = cfg.top_k, K = k + 1;
  p.batch = B, p.table_splits = n, p.queries = R, p.slots = K, p.score_cols = J, p.eps = ranker_eps(cfg);
  const bool ranked = cfg.ranker, weighting = cfg.ranker && cfg.split_weighting;
  if (ranked && B * R * J > 0 &&
      (!scores.defined() || scores.numel() != B * R * J || scores.device() != device))
    fail("select_contexts", "the ranker needs scores [" + std::to_string(B) + ", " + std::to_string(R) + ", " +
                                std::to_string(J) + "] on " + name_of(device) + ", got " +
                                (scores.defined() ? scores.describe() : std::string("none")));
  // What the scores do not change, on the host: each context's number of empty slots, and
  // whether any slot is weighted (one is selected: ranker, split weighting).
  std::vector<int32_t> query(size_t(R), 0);
  bool identity = true;  // query_split = 0 .. R-1 (the model's forward): nothing to upload
  p.empty_slots.assign(size_t(B * R), 0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t q = query_split[size_t(r)], selected = kernels::selected_rows(ranked, q, J, k);
    query[size_t(r)] = int32_t(q);
    identity &= q == r;
    for (int64_t b = 0; b < B; ++b) p.empty_slots[size_t(b * R + r)] = int32_t(k - selected);
    p.weighted |= weighting && B > 0 && selected > 0;
  }
  const int64_t total = B * R * K;
  p.split = Tensor::empty({total}, DType::I32, device);
  p.weight = Tensor::empty({total}, DType::F64, device);
  p.score_index = Tensor::empty({total}, DType::I32, device);
  p.norm_index = Tensor::empty({total}, DType::I32, device);
  if (total == 0) return p;
  Tensor qs = identity ? Tensor() : Tensor::from(query, {R}, device);  // an upload (generation): no wait
  // The kernel's element type is the scores'; without them (no ranker) any: they are not read.
  const bool read = ranked && scores.defined();
  const Tensor& typed = read ? scores : Tensor::empty({0}, DType::F32, device);
  const int32_t* qp = identity ? nullptr : qs.data<int32_t>();
  using kernels::SplitNorm;
  const kernels::SelectRule rule{ranked, weighting, cfg.is_encoder(),
                                 cfg.is_encoder()                   ? SplitNorm::Min
                                 : cfg.ranker_weight_norm == "max" ? SplitNorm::Max
                                                                   : SplitNorm::First,
                                 p.eps};
  AVEY_DISPATCH_IN(::avey::kernels, "select_contexts", typed, select_contexts,
                   {.batch = B, .queries = R, .cols = J, .k = k, .table = n, .query = qp,
                    .scores = read ? typed.data<T>() : nullptr, .rule = rule, .split = p.split.data<int32_t>(),
                    .weight = p.weight.data<double>(), .score_index = p.score_index.data<int32_t>(),
                    .norm_index = p.norm_index.data<int32_t>()});
  return p;
}

ContextPlan plan_contexts(const Config& cfg, int64_t B, int64_t n, const std::vector<int64_t>& query_split,
                          const std::vector<double>& scores, int64_t J) {
  const int64_t R = int64_t(query_split.size());
  if (cfg.ranker && int64_t(scores.size()) != B * R * J)
    throw std::invalid_argument("plan_contexts: " + std::to_string(scores.size()) + " scores for [" +
                                std::to_string(B) + ", " + std::to_string(R) + ", " + std::to_string(J) + "]");
  Tensor sc = cfg.ranker && !scores.empty() ? Tensor::from(scores, {B, R, J}) : Tensor();
  return select_contexts(cfg, B, n, query_split, sc, J, Device::CPU);
}

namespace {

void check_plan(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  if (splits.ndim() != 2 || splits.size(0) != plan.batch * plan.table_splits)
    fail("build_contexts", "splits must be [" + std::to_string(plan.batch * plan.table_splits) + ", S*d], got " +
                               splits.describe());
  if (scores.defined() && scores.numel() != plan.batch * plan.queries * plan.score_cols)
    fail("build_contexts", "scores " + scores.describe() + " do not match the plan");
  if (plan.split.device() != splits.device() || (scores.defined() && scores.device() != splits.device()))
    fail("build_contexts", "the plan (on " + std::string(name_of(plan.split.device())) + "), splits " +
                               splits.describe() + " and scores must be on one device");
}

// The plan's weights as a column [B*R*K, 1] in the splits' dtype (double rounded once).
Tensor weight_column(const ContextPlan& plan, const Tensor& like) {
  return reshape(plan.weight, {plan.weight.numel(), 1}).to(like.dtype());
}

}  // namespace

Tensor build_contexts_composed(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  check_plan(splits, scores, plan);
  Tensor gathered = gather_rows(splits, plan.split);
  const std::vector<double> weight = plan.weight.to(Device::CPU).to_vector<double>();
  const std::vector<int32_t> score_index = plan.score_index.to(Device::CPU).to_vector<int32_t>();
  const std::vector<int32_t> norm_index = plan.norm_index.to(Device::CPU).to_vector<int32_t>();
  const size_t total = weight.size();
  std::vector<double> constant(total);
  for (size_t s = 0; s < total; ++s) constant[s] = score_index[s] >= 0 ? 0.0 : weight[s];
  Tensor w = Tensor::from(constant, {int64_t(total), 1}).to(splits.dtype()).to(splits.device());
  if (scores.defined() && plan.weighted) {
    // scores as a column with two extra rows: a zero (numerator of constant slots) and a one
    // (their norm), so one gather gives every slot's numerator and one its norm.
    const int64_t ns = scores.numel();
    Tensor table = concat_rows({reshape(scores, {ns, 1}), Tensor::zeros({1, 1}, scores.dtype(), scores.device()),
                                Tensor::full({1, 1}, 1.0, scores.dtype(), scores.device())});
    std::vector<int32_t> num(total), den(total);
    for (size_t s = 0; s < total; ++s) {
      num[s] = score_index[s] >= 0 ? score_index[s] : int32_t(ns);
      den[s] = norm_index[s] >= 0 ? norm_index[s] : int32_t(ns + 1);
    }
    Tensor numer = gather_rows(table, Tensor::from(num, {int64_t(total)}, splits.device()));
    Tensor denom = add_scalar(gather_rows(table, Tensor::from(den, {int64_t(total)}, splits.device())), plan.eps);
    w = add(div(numer, denom), w);
  }
  return mul(gathered, w);
}

Tensor build_contexts(const Tensor& splits, const Tensor& scores, const ContextPlan& plan) {
  check_plan(splits, scores, plan);
  Tensor out;
  {
    NoGrad no_grad;
    out = mul(gather_rows(splits, plan.split), weight_column(plan, splits));
  }
  Tensor sc = plan.weighted ? scores : Tensor();
  record(out, "avey.build_contexts", {splits, sc}, [splits, sc, plan](const Tensor& g) -> std::vector<Tensor> {
    const int64_t B = plan.batch, n = plan.table_splits, RK = plan.queries * plan.slots, row = splits.size(1);
    Tensor gx, gs;
    if (splits.requires_grad()) {
      // P [B, R*K, n]: w at (slot, split); dX = P^T dH per sequence.
      Tensor pm = Tensor::empty({B, RK, n}, splits.dtype(), splits.device());
      AVEY_DISPATCH_IN(::avey::kernels, "build_contexts", pm, selection_matrix, B, RK, n, plan.split.data<int32_t>(),
                    plan.weight.data<double>(), pm.data<T>());
      gx = reshape(matmul(pm, reshape(g, {B, RK, row}), true, false), {B * n, row});
    }
    if (sc.defined() && sc.requires_grad()) {
      // dw_s = <dH[s], X[j_s]> (one pass, no gathered copy), then per context its scores' gradient
      Tensor dw = Tensor::empty({plan.split.numel()}, DType::F64, g.device());
      AVEY_DISPATCH_IN(::avey::kernels, "build_contexts", g, gathered_row_dots, plan.split.numel(), row, g.data<T>(), splits.data<T>(),
                    plan.split.data<int32_t>(), dw.data<double>());
      gs = Tensor::empty(sc.shape(), sc.dtype(), sc.device());
      AVEY_DISPATCH_IN(::avey::kernels, "build_contexts", gs, selection_score_grad,
                       {.contexts = B * plan.queries, .slots = plan.slots, .cols = plan.score_cols,
                        .scores = sc.data<T>(), .score_index = plan.score_index.data<int32_t>(),
                        .norm_index = plan.norm_index.data<int32_t>(), .gw = dw.data<double>(), .eps = plan.eps,
                        .gscores = gs.data<T>()});
    }
    return {gx, gs};
  });
  return out;
}

}  // namespace avey
