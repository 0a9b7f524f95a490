// Training throughput of this engine on the GPU (or the CPU), the counterpart of
// benchmarks/torch_train_bench.py: the same step (bf16 mixed precision, loss, backward, global
// grad-norm clip 1.0, fused AdamW betas 0.9/0.95 eps 1e-12 wd 0.1 on matrices, lr 1e-3) on
// synthetic token batches (random ids; labels = the next id). An Avey-B config (avey-b-base)
// trains its masked language model instead, with its recipe: 20% of each batch masked
// (data/masking.h), AdamW betas 0.95/0.95 eps 1e-18 wd 0.01, lr 7e-4: the counterpart of
// benchmarks/torch_avey_b_bench.py (the public reference's classes).
//
//   bench_train [--config tiny] [--batch 16] [--seq-len 512] [--steps 20] [--warmup 3]
//               [--precision bf16|fp32] [--device cuda|cpu] [--infer] [--prompts 2048,8192]
//               [--full-len 32768] [--json-out FILE]
//
// Training: --warmup steps, then --steps steps timed together (host clock around a device
// synchronize at each end); ms/step, tok/s, MFU (avey/flops.h over engine/device_info.h's
// datasheet peak) and the peak GPU memory the caching allocator had in use during the timed
// steps. One more step, synchronised after each phase, splits the time into forward, backward
// and optimizer (clip + AdamW).
// --infer: time to first token in generation mode (next_token_logits) for each prompt length,
// and one full-prompt forward (all logits) of --full-len tokens; median of several runs.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>

#include "avey/flops.h"
#include "avey/model.h"
#include "data/masking.h"
#include "engine/device_info.h"
#include "engine/profile.h"
#include "engine/random.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#ifdef AVEY_HAVE_CUDA
#include "kernels/cuda/memory.h"
#endif

using namespace engine;
using clock_type = std::chrono::steady_clock;

namespace {

void sync(Device d) {
#ifdef AVEY_HAVE_CUDA
  if (d == Device::CUDA) kernels::cuda::synchronize();
#else
  (void)d;
#endif
}

double peak_gib(Device d) {
#ifdef AVEY_HAVE_CUDA
  if (d == Device::CUDA) return double(kernels::cuda::peak_bytes_in_use()) / double(1ull << 30);
#endif
  (void)d;
  return 0;
}

void reset_peak(Device d) {
#ifdef AVEY_HAVE_CUDA
  if (d == Device::CUDA) kernels::cuda::reset_peak();
#endif
  (void)d;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::vector<int64_t> ints(const std::string& s) {
  std::vector<int64_t> out;
  size_t p = 0;
  while (p < s.size()) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    out.push_back(std::stoll(s.substr(p, q - p)));
    p = q + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"config", "tiny"}, {"batch", ""},         {"seq-len", "512"},
                                          {"steps", "20"},     {"warmup", "3"},       {"precision", "bf16"},
                                          {"device", "cuda"},  {"prompts", "2048,8192,32768,65536"},
                                          {"full-len", "32768"}, {"json-out", ""},    {"infer", "0"}};
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      fmt::print(stderr, "bench_train: unexpected argument {}\n", k);
      return 2;
    }
    k = k.substr(2);
    if (k == "infer") {
      a[k] = "1";
      continue;
    }
    if (!a.count(k) || i + 1 >= argc) {
      fmt::print(stderr, "bench_train: unknown option or missing value: --{}\n", k);
      return 2;
    }
    a[k] = argv[++i];
  }
  const std::string name = a["config"];
  avey::Config cfg = avey::load_config(name);
  const Device dev = a["device"] == "cpu" ? Device::CPU : Device::CUDA;
  const DType dt = a["precision"] == "fp32" ? DType::F32 : DType::BF16;
  const int64_t B = a["batch"].empty() ? (name == "tiny" ? 16 : 8) : std::stoll(a["batch"]);
  const int64_t T = std::stoll(a["seq-len"]);
  const int steps = std::stoi(a["steps"]), warmup = std::stoi(a["warmup"]);
  auto emit = [&](const nlohmann::json& j) {
    fmt::print("JSON {}\n", j.dump());
    if (!a["json-out"].empty()) std::ofstream(a["json-out"], std::ios::app) << j.dump() << "\n";
  };

  avey::Model model(cfg, dev, dt);
  model.init(11);
  Rng rng(1);

  if (a["infer"] == "1") {
    std::vector<int64_t> prompts = ints(a["prompts"]);
    const int64_t full = std::stoll(a["full-len"]);
    std::vector<int32_t> ids;
    const int64_t longest = std::max(full, *std::max_element(prompts.begin(), prompts.end()));
    for (int64_t i = 0; i < longest; ++i) ids.push_back(int32_t(rng.below(uint64_t(cfg.vocab_size))));
    auto median_ms = [&](auto fn, int reps) {
      fn();
      sync(dev);
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        auto t0 = clock_type::now();
        fn();
        sync(dev);
        t.push_back(seconds_since(t0) * 1e3);
      }
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    for (int64_t P : prompts) {
      std::vector<int32_t> p(ids.begin(), ids.begin() + P);
      double ms = median_ms([&] { model.next_token_logits(p); }, 10);
      emit({{"kind", "ttft"}, {"engine", "avey"}, {"config", name}, {"prompt", P}, {"ms", ms},
            {"device", device_name(dev)}});
    }
    reset_peak(dev);
    Tensor x = Tensor::from(std::vector<int32_t>(ids.begin(), ids.begin() + full), {1, full}, dev);
    double ms = median_ms([&] { model.logits(x); }, 3);
    emit({{"kind", "full_forward"}, {"engine", "avey"}, {"config", name}, {"prompt", full}, {"ms", ms},
          {"tok_per_s", double(full) / (ms / 1e3)}, {"peak_mem_gib", peak_gib(dev)}, {"device", device_name(dev)}});
    return 0;
  }

  std::vector<optim::Segment> segs;
  for (const avey::Param& p : model.params())
    segs.push_back({p.name, p.value.impl()->offset, p.value.numel(), p.value.ndim() >= 2});
  const bool mlm = cfg.is_encoder();
  const optim::AdamWConfig recipe = mlm ? optim::AdamWConfig{0.95, 0.95, 1e-18, 0.01} : optim::AdamWConfig{0.9, 0.95, 1e-12, 0.1};
  const double lr = mlm ? 7e-4 : 1e-3;
  optim::AdamW opt(model.flat_params(), segs, recipe);
  // A few distinct batches, rotated (labels: the next token of the same random stream; Avey-B:
  // the masked ids).
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (int k = 0; k < 4; ++k) {
    std::vector<int32_t> ids, labels;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int32_t> row;
      for (int64_t t = 0; t <= T; ++t) row.push_back(int32_t(rng.below(uint64_t(mlm ? cfg.mask_id : cfg.vocab_size))));
      ids.insert(ids.end(), row.begin(), row.end() - 1);
      labels.insert(labels.end(), row.begin() + 1, row.end());
    }
    if (mlm) {
      const data::MaskedBatch m = data::mask_tokens(ids, int32_t(cfg.mask_id), rng);
      ids = m.input_ids, labels = m.labels;
    }
    batches.push_back({Tensor::from(ids, {B, T}), Tensor::from(labels, {B, T})});  // on the host, as avey train
  }
  double last_loss = 0;
  double phase[3] = {0, 0, 0};
  auto step = [&](int i, bool phases) {
    auto& [x, y] = batches[size_t(i) % batches.size()];
    auto t0 = clock_type::now();
    model.zero_grad();
    Tensor loss = model.loss(x, y);
    if (phases) sync(dev), phase[0] = seconds_since(t0), t0 = clock_type::now();
    loss.backward();
    if (phases) sync(dev), phase[1] = seconds_since(t0), t0 = clock_type::now();
    optim::ClipResult clip = optim::clip_grad_norm(model.flat_grads(), 1.0);
    opt.step(model.flat_grads(), lr, clip, model.working_params());
    if (phases) sync(dev), phase[2] = seconds_since(t0), last_loss = loss.item();
    return loss;
  };
  const bool profiling = profile::enabled();
  profile::set_enabled(false);
  auto tw = clock_type::now();
  for (int i = 0; i < warmup; ++i) step(i, false);
  sync(dev);
  const double warm_s = seconds_since(tw);
  reset_peak(dev);
  auto t0 = clock_type::now();
  Tensor loss;
  for (int i = 0; i < steps; ++i) loss = step(warmup + i, false);
  sync(dev);
  const double ms = seconds_since(t0) * 1e3 / steps;
  const double peak_mem = peak_gib(dev);
  last_loss = loss.item();
  step(0, true);  // the phase split
  if (profiling) {  // one more step with every op synchronised and timed
    profile::reset();
    profile::set_enabled(true);
    step(1, false);
    sync(dev);
    profile::set_enabled(false);
    fmt::print("== per-op time of one {} {} step (AVEY_PROFILE=1)\n{}", name, a["precision"], profile::report());
  }
  const double tok_s = double(B * T) / (ms / 1e3);
  const double fpt = avey::train_flops_per_token(cfg, T), peak = peak_flops(dev, dt);
  emit({{"kind", "train"},
        {"engine", "avey"},
        {"config", name},
        {"precision", a["precision"]},
        {"batch", B},
        {"seq_len", T},
        {"steps", steps},
        {"warmup_s", warm_s},
        {"ms_per_step", ms},
        {"tok_per_s", tok_s},
        {"mfu", peak > 0 ? fpt * tok_s / peak : 0.0},
        {"peak_mem_gib", peak_mem},
        {"forward_ms", phase[0] * 1e3},
        {"backward_ms", phase[1] * 1e3},
        {"optimizer_ms", phase[2] * 1e3},
        {"loss", last_loss},
        {"params", model.num_params()},
        {"device", device_name(dev)}});
  fmt::print("avey {} {} B{}xT{}: {:.2f} ms/step, {:.0f} tok/s, MFU {:.1f}%, peak {:.2f} GiB "
             "(forward {:.1f} ms, backward {:.1f} ms, optimizer {:.1f} ms)\n",
             name, a["precision"], B, T, ms, tok_s, peak > 0 ? 100 * fpt * tok_s / peak : 0.0, peak_mem,
             phase[0] * 1e3, phase[1] * 1e3, phase[2] * 1e3);
  return 0;
}
