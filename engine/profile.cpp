#include "engine/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <vector>

#ifdef AVEY_HAVE_CUDA
#include "kernels/cuda/memory.h"
#endif

namespace engine::profile {

namespace {
bool g_enabled = [] {
  const char* v = std::getenv("AVEY_PROFILE");
  return v && std::string(v) == "1";
}();
struct Row {
  int64_t calls = 0;
  double seconds = 0;
};
std::map<std::string, Row>& table() {
  static std::map<std::string, Row> t;
  return t;
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
void wait(Device d) {
#ifdef AVEY_HAVE_CUDA
  if (d == Device::CUDA) kernels::cuda::synchronize();
#else
  (void)d;
#endif
}
}  // namespace

bool enabled() { return g_enabled; }
void set_enabled(bool on) { g_enabled = on; }
void reset() { table().clear(); }

void Scope::begin(std::string_view op, Device device) {
  active_ = true, op_ = std::string(op), device_ = device;
  wait(device);
  t0_ = now();
}

void Scope::end() {
  wait(device_);
  Row& r = table()[op_];
  r.calls++;
  r.seconds += now() - t0_;
}

std::string report() {
  std::vector<std::pair<std::string, Row>> rows(table().begin(), table().end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (auto& [n, r] : rows) total += r.seconds;
  std::string out = fmt::format("{:<24s} {:>7s} {:>10s} {:>7s}\n", "op", "calls", "total ms", "share");
  for (auto& [n, r] : rows)
    out += fmt::format("{:<24s} {:>7d} {:>10.2f} {:>6.1f}%\n", n, r.calls, r.seconds * 1e3,
                       total > 0 ? 100 * r.seconds / total : 0.0);
  out += fmt::format("{:<24s} {:>7s} {:>10.2f}\n", "total (synchronised)", "", total * 1e3);
  return out;
}

}  // namespace engine::profile
