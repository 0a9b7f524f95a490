// Learning-rate schedules: lr_at(step) for the 0-based index of the optimizer step about to be
// taken (the first step uses lr_at(0)). With W = warmup_steps, N = total_steps, P = peak_lr:
//
//   warm-up, step < W (any kind):  lr = P * step / W                   (lr 0 at step 0, as
//                                  Hugging Face's get_*_schedule_with_warmup and LinearLR)
//   constant:                       lr = P
//   cosine:                         lr = P * (f + (1 - f) * (1 + cos(pi * q)) / 2)
//   warmup_cosine:                  the same with f = 0 (cosine to 0 after the warm-up)
//   linear:                         lr = P * max(0, (N - step) / (N - W))   (transformers'
//                                  get_linear_schedule_with_warmup: Avey-B's fine-tuning recipe)
//
// where q = min(1, (step - W) / max(1, N - W)) is the progress through the decay and f =
// floor_fraction (docs/model.md: 0.1, "cosine decay to 10% of the peak"). With W = 0 the cosine is PyTorch's
// CosineAnnealingLR(T_max = N, eta_min = f * P); with W > 0 it is transformers'
// get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate = f) (f = 0:
// get_cosine_schedule_with_warmup). After N steps the lr stays at the floor f * P.
#pragma once
#include <cstdint>
#include <string>

namespace optim {

enum class ScheduleKind { Cosine, Constant, WarmupCosine, Linear };

ScheduleKind parse_schedule_kind(const std::string& name);  // "cosine" | "constant" | "warmup_cosine" | "linear"
std::string to_string(ScheduleKind kind);

struct Schedule {
  ScheduleKind kind = ScheduleKind::Cosine;
  double peak_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;       // required (> warmup_steps) for the cosine kinds
  double floor_fraction = 0.1;   // cosine only; warmup_cosine decays to 0 whatever this says

  void validate() const;  // throws std::invalid_argument with the offending field
  double lr_at(int64_t step) const;
};

}  // namespace optim
