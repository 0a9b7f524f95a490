#include "avey/model.h"

#include <fmt/format.h>

#include <cmath>

#include "avey/block.h"
#include "avey/head.h"
#include "avey/heads.h"
#include "avey/norm.h"
#include "avey/packing.h"
#include "avey/ranker.h"
#include "avey/encoder.h"
#include "engine/random.h"

namespace avey {

using namespace engine;

std::vector<std::pair<std::string, Shape>> parameter_layout(const Config& c) {
  const int64_t d = c.d_embed, m = c.expanded_width(), C = c.context_rows();
  if (c.is_encoder()) {  // the reference's AveyForMaskedLM: embed, layers (static even, dynamic odd), ranker
    std::vector<std::pair<std::string, Shape>> out{{"embed.weight", {c.vocab_size, d}}};
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const std::string p = fmt::format("layers.{}.", l);
      out.push_back({p + "norm.weight", {d}});
      out.push_back({p + "enricher.weight", {4 * d, d}});
      out.push_back({p + "enricher.bias", {4 * d}});
      if (l % 2 == 0) out.push_back({p + "spatial_proj", {c.split_size, c.split_size}});
      out.push_back({p + "fuser.weight", {d, 3 * d}});
      out.push_back({p + "fuser.bias", {d}});
      out.push_back({p + "alpha", {}});  // a 0-dim scalar, as the reference stores it
    }
    out.push_back({"ranker.down_proj", {c.split_size, C}});
    // a fine-tuning head after the encoder's parameters, as the reference's subclasses register it
    const int64_t L = c.num_labels;
    if (c.head == "sequence")
      out.insert(out.end(), {{"dense.0.weight", {2 * d, d}}, {"dense.0.bias", {2 * d}},
                             {"dense.2.weight", {2 * d, 2 * d}}, {"dense.2.bias", {2 * d}},
                             {"dense.4.weight", {d, 2 * d}}, {"dense.4.bias", {d}},
                             {"classifier.weight", {L, d}}, {"classifier.bias", {L}}});
    if (c.head == "token")
      out.insert(out.end(), {{"dense.0.weight", {d, d}}, {"dense.0.bias", {d}},
                             {"classifier.weight", {L, d}}, {"classifier.bias", {L}}});
    return out;
  }
  std::vector<std::pair<std::string, Shape>> out{{"wte.weight", {c.vocab_size, d}}};
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blocks.{}.", i);
    out.push_back({p + "rms_norm.weight", {d}});
    if (c.use_layernorm()) out.push_back({p + "rms_norm.bias", {d}});
    out.push_back({p + "ctxt.enricher.weight", {m, d}});
    out.push_back({p + "ctxt.enricher.bias", {m}});
    if (!c.use_attention()) out.push_back({p + "ctxt.contextualizer.spatial_proj", {C, C}});
    out.push_back({p + "ctxt.fuser.weight", {d, c.fuser_in()}});
    out.push_back({p + "ctxt.fuser.bias", {d}});
  }
  out.push_back({"ln_f.weight", {d}});
  if (c.use_layernorm()) out.push_back({"ln_f.bias", {d}});
  return out;
}

Model::Model(const Config& cfg, Device device, DType dtype) : cfg_(cfg), device_(device), dtype_(dtype) {
  cfg_.validate();
  if (!is_floating(dtype)) fail("Model", "parameters need a floating dtype");
  auto shapes = parameter_layout(cfg_);
  // Each parameter starts at a multiple of kParamAlign elements (zeros between them, which no
  // gradient reaches and AdamW keeps at zero). Packed end to end, a 0-dim alpha would leave the
  // next layer's matrices at odd offsets, 2-byte aligned in bf16, and cuBLASLt and the vector
  // loads would fall back to their slow unaligned kernels.
  auto aligned = [](int64_t n) { return (n + kParamAlign - 1) / kParamAlign * kParamAlign; };
  int64_t total = 0;
  num_params_ = 0;
  for (auto& [name, shape] : shapes) total = aligned(total) + numel(shape), num_params_ += numel(shape);
  const bool mixed = dtype == DType::BF16;
  const DType master = mixed ? DType::F32 : dtype;
  flat_ = Tensor::zeros({total}, master, device);
  flat_grad_ = Tensor::zeros({total}, master, device);
  if (mixed) working_ = Tensor::zeros({total}, DType::BF16, device);
  int64_t offset = 0;
  std::map<std::string, Tensor> by_name;
  for (auto& [name, shape] : shapes) {
    offset = aligned(offset);
    Tensor v = flat_.view(offset, shape);
    Tensor g = flat_grad_.view(offset, shape);
    v.requires_grad_();
    v.set_name(name);
    v.set_grad(g);
    Tensor w = v;
    if (mixed) {
      w = working_.view(offset, shape);
      w.requires_grad_();
      w.set_name(name);
      w.set_grad(g);
    }
    params_.push_back({name, v, w});
    by_name[name] = w;
    offset += numel(shape);
  }
  if (cfg_.is_encoder()) {
    wte_ = by_name.at("embed.weight");
    down_proj_ = by_name.at("ranker.down_proj");
    for (int64_t l = 0; l < cfg_.n_layers; ++l) {
      const std::string p = fmt::format("layers.{}.", l);
      auto get = [&](const std::string& s) { return by_name.count(p + s) ? by_name.at(p + s) : Tensor(); };
      layers_.push_back(EncoderLayerWeights{get("norm.weight"), get("enricher.weight"), get("enricher.bias"),
                                            get("spatial_proj"), get("fuser.weight"), get("fuser.bias"), get("alpha")});
    }
    auto lin = [&](const std::string& p) { return Linear{by_name.at(p + ".weight"), by_name.at(p + ".bias")}; };
    if (cfg_.head == "sequence") seq_head_ = {lin("dense.0"), lin("dense.2"), lin("dense.4"), lin("classifier")};
    if (cfg_.head == "token") tok_head_ = {lin("dense.0"), lin("classifier")};
    return;
  }
  wte_ = by_name.at("wte.weight");
  lnf_w_ = by_name.at("ln_f.weight");
  if (cfg_.use_layernorm()) lnf_b_ = by_name.at("ln_f.bias");
  for (int64_t i = 0; i < cfg_.n_layers; ++i) {
    const std::string p = fmt::format("blocks.{}.", i);
    auto get = [&](const std::string& s) { return by_name.count(p + s) ? by_name.at(p + s) : Tensor(); };
    blocks_.push_back(BlockWeights{get("rms_norm.weight"), get("rms_norm.bias"), get("ctxt.enricher.weight"),
                            get("ctxt.enricher.bias"), get("ctxt.contextualizer.spatial_proj"),
                            get("ctxt.fuser.weight"), get("ctxt.fuser.bias")});
  }
}

void Model::zero_grad() {
  for (Param& p : params_) p.work.discard_grad();
}

Tensor& Model::flat_grads() {
  for (Param& p : params_) p.work.grad();  // zeroes what no backward reached since zero_grad()
  return flat_grad_;
}

void Model::refresh_working() {
  if (working_.defined()) working_.copy_(flat_.to(DType::BF16));
}

// Avey-B's init (docs/model.md section 2): Xavier-normal matrices (std sqrt(2 / (fan_in +
// fan_out)); M's fans are both S), zero biases, gains and alpha 1.
Tensor Model::encoder_init(const std::string& name, const Shape& shape, Rng& rng, DType dt) const {
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  if (shape.size() == 2) {
    const double fans = ends("spatial_proj") ? 2.0 * double(shape[0]) : double(shape[0] + shape[1]);
    return Tensor::randn(shape, rng, std::sqrt(2.0 / fans), dt, device_);
  }
  if (ends("bias")) return Tensor::zeros(shape, dt, device_);
  return Tensor::full(shape, 1.0, dt, device_);  // norm gains and alpha
}

void Model::init(uint64_t seed) {
  const DType dt = master_dtype();
  Rng rng(seed);
  const double d = double(cfg_.d_embed), V = double(cfg_.vocab_size), C = double(cfg_.context_rows());
  for (Param& p : params_) {
    Tensor& v = p.value;
    auto ends = [&](const std::string& s) {
      return p.name.size() >= s.size() && p.name.compare(p.name.size() - s.size(), s.size(), s) == 0;
    };
    Tensor fresh;
    if (cfg_.is_encoder()) {
      fresh = encoder_init(p.name, v.shape(), rng, dt);
    } else if (p.name == "wte.weight") {
      fresh = Tensor::randn(v.shape(), rng, std::sqrt(2.0 / (V + d)), dt, device_);  // Xavier-normal
    } else if (ends("spatial_proj")) {
      fresh = Tensor::randn(v.shape(), rng, std::sqrt(2.0 / (C + C)), dt, device_);
    } else if (ends("enricher.weight") || ends("enricher.bias")) {
      const double b = 1.0 / std::sqrt(d);  // nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      fresh = Tensor::uniform(v.shape(), rng, -b, b, dt, device_);
    } else if (ends("fuser.weight") || ends("fuser.bias")) {
      const double b = 1.0 / std::sqrt(double(cfg_.fuser_in()));
      fresh = Tensor::uniform(v.shape(), rng, -b, b, dt, device_);
    } else if (ends("norm.weight") || p.name == "ln_f.weight") {
      fresh = Tensor::full(v.shape(), 1.0, dt, device_);
    } else {  // norm biases
      fresh = Tensor::zeros(v.shape(), dt, device_);
    }
    v.copy_(fresh);
  }
  refresh_working();
}

std::vector<int32_t> Model::host_ids(const Tensor& ids, int64_t& B, int64_t& T) const {
  if (ids.dtype() != DType::I32 || ids.ndim() != 2 || ids.size(1) < 1)
    fail("avey", "input_ids must be i32 [B, T] with T >= 1, got " + ids.describe());
  B = ids.size(0), T = ids.size(1);
  std::vector<int32_t> v = ids.to(Device::CPU).to_vector<int32_t>();
  for (int32_t id : v)
    if (id < 0 || id >= cfg_.vocab_size)
      fail("avey", fmt::format("token id {} outside the vocabulary [0, {})", id, cfg_.vocab_size));
  return v;
}

Tensor Model::embed(const std::vector<int32_t>& ids, int64_t B, int64_t T) const {
  const int64_t S = cfg_.split_size, Tp = (T + S - 1) / S * S;
  std::vector<int32_t> idx(size_t(B * Tp), 0);
  std::vector<double> keep(size_t(B * Tp), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      idx[size_t(b * Tp + t)] = ids[size_t(b * T + t)];
      keep[size_t(b * Tp + t)] = 1.0;
    }
  Tensor x = gather_rows(wte_, Tensor::from(idx, {B * Tp}, device_));
  if (Tp != T) x = mul(x, Tensor::from(keep, {B * Tp, 1}).to(dtype_).to(device_));  // zero padding rows
  return x;
}

Model::Contexts Model::contexts(const Tensor& x, int64_t B, int64_t n) const {
  const int64_t S = cfg_.split_size, d = cfg_.d_embed;
  std::vector<int64_t> queries(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) queries[size_t(i)] = i;
  Tensor scores;
  if (cfg_.ranker) {
    // Scores in fp32 even in mixed precision: bf16 scores would round near-ties into different selections.
    Tensor x3 = reshape(x.dtype() == DType::BF16 ? cast(x, DType::F32) : x, {B, n * S, d});
    if (cfg_.split_weighting) {
      scores = maxsim_scores(x3, x3, S);
    } else {
      NoGrad no_grad;  // scores only select; nothing flows back through them
      scores = maxsim_scores(x3, x3, S);
    }
  }
  ContextPlan plan = select_contexts(cfg_, B, n, queries, scores, n, x.device());  // on x's device
  Tensor splits = reshape(x, {B * n, S * d});
  Tensor ctx = composed_ ? build_contexts_composed(splits, scores, plan) : build_contexts(splits, scores, plan);
  return pack(reshape(ctx, {B * n * cfg_.context_rows(), d}), plan);
}

// The contexts [N*C, d] in the packed layout (avey/packing.h): each padding row once.
Model::Contexts Model::pack(const Tensor& h, const ContextPlan& plan) const {
  std::vector<int64_t> pad(plan.empty_slots.size(), 0);
  if (packing_)
    for (size_t i = 0; i < pad.size(); ++i) pad[i] = plan.empty_slots[i] * cfg_.split_size;
  // Every training step has the same padding (split i has min(i, k) earlier splits whatever the
  // scores): the maps are built and uploaded once, not every forward.
  if (pad != packing_pad_)
    packing_cache_ = make_packing(cfg_.split_size, cfg_.context_rows(), pad, h.device()), packing_pad_ = pad;
  return {to_packed(h, packing_cache_), packing_cache_};
}

Tensor Model::norm(const Tensor& x, const Tensor& w, const Tensor& b) const {
  if (cfg_.use_layernorm()) return layernorm(x, w, b, kLayerNormEps);
  return composed_ ? rms_norm_composed(x, w, kRmsEps) : rmsnorm(x, w, kRmsEps);
}

Tensor Model::run_blocks(const Contexts& ctx) const {
  // The last block computes only the rows the head reads: each context's current split.
  const Packing& pack = ctx.pack;
  Tensor h = ctx.h;
  if (blocks_.empty()) return current_split(h, pack);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const bool last = i + 1 == blocks_.size();
    h = block(h, blocks_[i], cfg_, pack, last ? BlockRows::Current : BlockRows::All, composed_);
    if (block_hook_ && h.requires_grad())
      h.register_hook("block", [hook = block_hook_, i](const Tensor& g) { hook(int64_t(i), g); });
  }
  return h;
}

Tensor Model::hidden(const std::vector<int32_t>& ids, int64_t B, int64_t T) const {
  const int64_t S = cfg_.split_size, n = (T + S - 1) / S;
  const Tensor x = embed(ids, B, T);
  return cfg_.is_encoder() ? encode(x, B, n) : run_blocks(contexts(x, B, n));
}

// Avey-B: every split's context (the ranker of avey/ranker.h with Avey-B's rule), compressed to S
// rows, then the layers, each split on its own.
Tensor Model::encode(const Tensor& x, int64_t B, int64_t n) const {
  const int64_t S = cfg_.split_size, d = cfg_.d_embed, C = cfg_.context_rows();
  std::vector<int64_t> queries(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) queries[size_t(i)] = i;
  // fp32 scores even in mixed precision (bf16 would round near-ties into different selections)
  Tensor x3 = reshape(x.dtype() == DType::BF16 ? cast(x, DType::F32) : x, {B, n * S, d});
  Tensor scores = maxsim_scores(x3, x3, S, cfg_.eps);
  ContextPlan plan = select_contexts(cfg_, B, n, queries, scores, n, x.device());
  Tensor splits = reshape(x, {B * n, S * d});
  Tensor ctx = composed_ ? build_contexts_composed(splits, scores, plan) : build_contexts(splits, scores, plan);
  Tensor h = compress_contexts(reshape(ctx, {B * n, C, d}), down_proj_, x);
  for (size_t l = 0; l < layers_.size(); ++l) {
    h = encoder_layer(h, layers_[l], cfg_, composed_);
    if (block_hook_ && h.requires_grad())
      h.register_hook("block", [hook = block_hook_, l](const Tensor& g) { hook(int64_t(l), g); });
  }
  return h;
}

Tensor Model::loss(const Tensor& input_ids, const Tensor& labels) {
  int64_t B, T;
  std::vector<int32_t> ids = host_ids(input_ids, B, T);
  if (labels.dtype() != DType::I32 || labels.shape() != input_ids.shape())
    fail("avey loss", "labels must be i32 shaped like input_ids " + input_ids.describe() + ", got " + labels.describe());
  std::vector<int32_t> lab = labels.to(Device::CPU).to_vector<int32_t>();
  const int64_t S = cfg_.split_size, n = (T + S - 1) / S;
  Tensor h = hidden(ids, B, T);  // the last layer's rows
  // Only the labelled positions (the mean loss is over them; the other rows' logits never matter).
  std::vector<int32_t> rows, targets;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int32_t y = lab[size_t(b * T + t)];
      if (y == -100) continue;
      if (y < 0 || y >= cfg_.vocab_size)
        fail("avey loss", fmt::format("label {} outside the vocabulary [0, {})", y, cfg_.vocab_size));
      rows.push_back(int32_t((b * n + t / S) * S + t % S));
      targets.push_back(y);
    }
  if (rows.empty()) fail("avey loss", "every label is -100: no position to average the loss over");
  const int64_t M = int64_t(rows.size());
  Tensor hf = gather_rows(h, Tensor::from(rows, {M}, device_));
  if (!cfg_.is_encoder()) hf = norm(hf, lnf_w_, lnf_b_);  // Avey-B's head has no final norm
  Tensor tg = Tensor::from(targets, {M});  // on the host, where the fused head checks and counts them
  return composed_ ? tied_head_loss_composed(hf, wte_, tg.to(device_)) : tied_head_loss(hf, wte_, tg);
}

// Each sequence's T rows of the last layer, padding rows dropped: [B*T, d], row b*T + t.
Tensor Model::output_rows(const std::vector<int32_t>& ids, int64_t B, int64_t T) const {
  const int64_t S = cfg_.split_size, n = (T + S - 1) / S;
  Tensor h = hidden(ids, B, T);
  if (n * S == T) return h;  // split b*n + i's row t is already row b*T + i*S + t
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) rows.push_back(int32_t((b * n + t / S) * S + t % S));
  return gather_rows(h, Tensor::from(rows, {B * T}, device_));
}

Tensor Model::logits(const Tensor& input_ids) {
  NoGrad no_grad;
  int64_t B, T;
  std::vector<int32_t> ids = host_ids(input_ids, B, T);
  Tensor hf = output_rows(ids, B, T);
  if (!cfg_.is_encoder()) hf = norm(hf, lnf_w_, lnf_b_);
  return reshape(matmul(hf, wte_, false, true), {B, T, cfg_.vocab_size});
}

Tensor Model::head_forward(const std::vector<int32_t>& ids, int64_t B, int64_t T) const {
  const Tensor rows = output_rows(ids, B, T);  // [B*T, d]
  Tensor logits = cfg_.head == "sequence" ? sequence_head(mean_pool(reshape(rows, {B, T, cfg_.d_embed})), seq_head_)
                                          : token_head(rows, tok_head_);
  // losses and argmaxes in fp32 at least (mixed precision computes the head in bf16)
  return logits.dtype() == DType::BF16 ? cast(logits, DType::F32) : logits;
}

Tensor Model::task_logits(const Tensor& input_ids) {
  NoGrad no_grad;
  if (!cfg_.has_head()) fail("task_logits", "the model has no fine-tuning head (config key 'head')");
  int64_t B, T;
  std::vector<int32_t> ids = host_ids(input_ids, B, T);
  const Tensor logits = head_forward(ids, B, T);
  return cfg_.head == "sequence" ? logits : reshape(logits, {B, T, cfg_.num_labels});
}

Tensor Model::task_loss(const Tensor& input_ids, const Tensor& labels) {
  if (!cfg_.has_head()) fail("task_loss", "the model has no fine-tuning head (config key 'head')");
  int64_t B, T;
  std::vector<int32_t> ids = host_ids(input_ids, B, T);
  const int64_t L = cfg_.num_labels;
  if (cfg_.head == "token") {
    if (labels.dtype() != DType::I32 || labels.shape() != input_ids.shape())
      fail("task_loss", "token labels must be i32 shaped like input_ids " + input_ids.describe() + ", got " + labels.describe());
    std::vector<int32_t> lab = labels.to(Device::CPU).to_vector<int32_t>();
    for (int32_t y : lab)
      if (y != -100 && (y < 0 || y >= L)) fail("task_loss", fmt::format("token label {} outside [0, {}) (and not -100)", y, L));
    return cross_entropy(head_forward(ids, B, T), Tensor::from(lab, {B * T}, device_));
  }
  if (labels.dtype() == DType::I32 && L > 1) {
    std::vector<int32_t> lab = labels.to(Device::CPU).to_vector<int32_t>();
    if (labels.numel() != B) fail("task_loss", "class labels must be i32 [B], got " + labels.describe());
    for (int32_t y : lab)
      if (y < 0 || y >= L) fail("task_loss", fmt::format("label {} outside [0, {})", y, L));
  }
  return sequence_loss(head_forward(ids, B, T), labels.to(device_));
}

Tensor Model::next_token_logits(const std::vector<int32_t>& ids) {
  NoGrad no_grad;
  if (cfg_.is_encoder())
    fail("next_token_logits", "an avey-b model is an encoder (masked language model): it does not generate text");
  if (ids.empty()) fail("next_token_logits", "needs at least one token");
  const int64_t T = int64_t(ids.size()), S = cfg_.split_size, d = cfg_.d_embed, C = cfg_.context_rows();
  Tensor ids_t = Tensor::from(ids, {1, T});
  int64_t B1, T1;
  std::vector<int32_t> checked = host_ids(ids_t, B1, T1);
  const int64_t n = (T + S - 1) / S, J = n - 1;
  Tensor x = embed(checked, 1, T);  // [n*S, d]
  Tensor scores;
  if (cfg_.ranker && J > 0) {
    Tensor x3 = reshape(x.dtype() == DType::BF16 ? x.to(DType::F32) : x, {1, n * S, d});
    Tensor cur = reshape(x3.view(J * S * d, {S, d}), {1, S, d});
    Tensor prev = reshape(x3.view(0, {J * S, d}), {1, J * S, d});
    scores = maxsim_scores(cur, prev, S);  // [1, 1, J]
  }
  ContextPlan plan = select_contexts(cfg_, 1, n, {J}, scores, J, x.device());
  Tensor ctx = build_contexts(reshape(x, {n, S * d}), Tensor(), plan);  // [K, S*d] = one context
  Tensor h = run_blocks(pack(reshape(ctx, {C, d}), plan));
  const int64_t pos = T - 1 - J * S;  // in the current split
  Tensor last = norm(h.view(pos * d, {1, d}), lnf_w_, lnf_b_);
  return reshape(matmul(last, wte_, false, true), {cfg_.vocab_size});
}

void Model::load_state(const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, t] : tensors) {
    bool known = false;
    for (const Param& p : params_) known |= p.name == name;
    if (!known) fail("load_state", "unexpected tensor '" + name + "' " + t.describe() + " (not a parameter of this config)");
  }
  for (Param& p : params_) {
    auto it = tensors.find(p.name);
    if (it == tensors.end()) fail("load_state", "missing tensor '" + p.name + "' " + to_string(p.value.shape()));
    const Tensor& t = it->second;
    if (t.shape() != p.value.shape())
      fail("load_state", "tensor '" + p.name + "' has shape " + to_string(t.shape()) + ", the model wants " +
                             to_string(p.value.shape()));
    if (!is_floating(t.dtype())) fail("load_state", "tensor '" + p.name + "' is " + t.describe() + ", not floating point");
  }
  for (Param& p : params_) {
    const Tensor& t = tensors.at(p.name);
    Tensor src = t.dtype() == master_dtype() ? t : t.to(Device::CPU).to(master_dtype());
    p.value.copy_(src.to(device_));
  }
  refresh_working();
}

std::map<std::string, Tensor> Model::state() const {
  std::map<std::string, Tensor> out;
  for (const Param& p : params_) out[p.name] = p.value.detach();
  return out;
}

}  // namespace avey
