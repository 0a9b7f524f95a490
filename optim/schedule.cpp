#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace optim {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "cosine") return ScheduleKind::Cosine;
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "warmup_cosine") return ScheduleKind::WarmupCosine;
  if (name == "linear") return ScheduleKind::Linear;
  throw std::invalid_argument("schedule: unknown kind '" + name + "' (expected cosine, constant, warmup_cosine or linear)");
}

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Cosine: return "cosine";
    case ScheduleKind::Constant: return "constant";
    case ScheduleKind::WarmupCosine: return "warmup_cosine";
    case ScheduleKind::Linear: return "linear";
  }
  return "?";
}

void Schedule::validate() const {
  auto bad = [](const std::string& what) { throw std::invalid_argument("schedule: " + what); };
  if (!(peak_lr >= 0) || !std::isfinite(peak_lr)) bad("peak_lr must be finite and >= 0, got " + std::to_string(peak_lr));
  if (warmup_steps < 0) bad("warmup_steps must be >= 0, got " + std::to_string(warmup_steps));
  if (kind != ScheduleKind::Constant) {
    if (total_steps <= warmup_steps)
      bad(to_string(kind) + " needs total_steps > warmup_steps, got total_steps " + std::to_string(total_steps) +
          ", warmup_steps " + std::to_string(warmup_steps));
  }
  if (kind == ScheduleKind::Cosine && !(floor_fraction >= 0 && floor_fraction <= 1))
    bad("floor_fraction must be in [0, 1], got " + std::to_string(floor_fraction));
}

double Schedule::lr_at(int64_t step) const {
  if (step < 0) step = 0;
  if (step < warmup_steps) return peak_lr * double(step) / double(warmup_steps);
  if (kind == ScheduleKind::Constant) return peak_lr;
  if (kind == ScheduleKind::Linear)  // transformers' linear schedule: down to 0 at total_steps
    return peak_lr * std::max(0.0, double(total_steps - step) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
  const double f = kind == ScheduleKind::Cosine ? floor_fraction : 0.0;
  const double q = std::min(1.0, double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
  return peak_lr * (f + (1.0 - f) * 0.5 * (1.0 + std::cos(std::numbers::pi * q)));
}

}  // namespace optim
