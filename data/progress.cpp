// Progress: when to print, and the ETA.
#include "data/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace data {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = int64_t(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

Progress::Progress(std::string label)
    : label_(std::move(label)), tty_(isatty(fileno(stderr))), start_(std::chrono::steady_clock::now()), last_(start_) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(double fraction, const std::string& status) {
  if (label_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  // A terminal sees the first update at once; a log sees none in the first 30 s (short jobs: the last line only).
  if ((printed_ || !tty_) && since < (tty_ ? 0.2 : 30.0)) return;
  last_ = now;
  printed_ = true;
  const double eta = fraction > 0 ? elapsed() * (1 - fraction) / fraction : NAN;
  fmt::print(stderr, "{}{}: {:.1f}% | {} | ETA {}{}", tty_ ? "\r" : "", label_, 100 * fraction, status,
             format_duration(eta), tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void Progress::finish(const std::string& status) {
  if (label_.empty()) return;
  fmt::print(stderr, "{}{}: {} | {}{}\n", tty_ && printed_ ? "\r" : "", label_, status, format_duration(elapsed()),
             tty_ ? "\033[K" : "");
}

void CostFit::add(double x, double seconds) {
  n_ += 1, sx_ += x, sy_ += seconds, sxx_ += x * x, sxy_ += x * seconds;
}

double CostFit::predict(double x) const {
  if (n_ == 0) return -1;
  const double spread = n_ * sxx_ - sx_ * sx_;  // 0 while every item had the same x: the mean then
  const double b = spread > 1e-9 * n_ * sxx_ ? (n_ * sxy_ - sx_ * sy_) / spread : 0;
  return std::max(0.0, (sy_ - b * sx_) / n_ + b * x);
}

}  // namespace data
