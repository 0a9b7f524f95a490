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
const char* g_env = std::getenv("AVEY_PROFILE");
const bool g_events = g_env && std::string(g_env) == "events";  // else synchronised
bool g_enabled = g_env && (std::string(g_env) == "1" || g_events);
struct Row {
  int64_t calls = 0;
  double seconds = 0;
};
std::map<std::string, Row>& table() {
  static std::map<std::string, Row> t;
  return t;
}
struct Pending {  // events mode: an op's two events, read at report()
  std::string op;
  int begin, end;
};
std::vector<Pending>& pending() {
  static std::vector<Pending> p;
  return p;
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

std::string matmul_label(DType dt, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  if (!g_enabled) return "matmul";
  return fmt::format("matmul {} {}{}x{}x{} {}{}", name_of(dt), batch > 1 ? fmt::format("{}x ", batch) : "", m, n, k,
                     ta ? 'T' : 'N', tb ? 'T' : 'N');
}
void set_enabled(bool on) { g_enabled = on; }
void reset() {
  table().clear();
  pending().clear();
#ifdef AVEY_HAVE_CUDA
  if (g_events && kernels::cuda::available()) kernels::cuda::clear_marks();
#endif
}

void Scope::begin(std::string_view op, Device device) {
  active_ = true, op_ = std::string(op), device_ = device;
#ifdef AVEY_HAVE_CUDA
  if (g_events && device == Device::CUDA) {
    mark_ = kernels::cuda::mark();
    return;
  }
#endif
  wait(device);
  t0_ = now();
}

void Scope::end() {
#ifdef AVEY_HAVE_CUDA
  if (mark_ >= 0) {
    pending().push_back({op_, mark_, kernels::cuda::mark()});
    return;
  }
#endif
  wait(device_);
  Row& r = table()[op_];
  r.calls++;
  r.seconds += now() - t0_;
}

std::string report() {
  std::string span;
#ifdef AVEY_HAVE_CUDA
  if (!pending().empty()) {
    double inside = 0;
    for (const Pending& p : pending()) {
      Row& r = table()[p.op];
      const double ms = kernels::cuda::marks_ms(p.begin, p.end);
      r.calls++;
      r.seconds += ms / 1e3;
      inside += ms;
    }
    const double all = kernels::cuda::marks_ms(pending().front().begin, pending().back().end);
    span = fmt::format("{:<24s} {:>7s} {:>10.2f}\n{:<24s} {:>7s} {:>10.2f}\n", "span, first op to last", "", all,
                       "outside every op", "", all - inside);
    pending().clear();
    kernels::cuda::clear_marks();
  }
#endif
  std::vector<std::pair<std::string, Row>> rows(table().begin(), table().end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (auto& [n, r] : rows) total += r.seconds;
  std::string out = fmt::format("{:<24s} {:>7s} {:>10s} {:>7s}\n", "op", "calls", "total ms", "share");
  for (auto& [n, r] : rows)
    out += fmt::format("{:<24s} {:>7d} {:>10.2f} {:>6.1f}%\n", n, r.calls, r.seconds * 1e3,
                       total > 0 ? 100 * r.seconds / total : 0.0);
  out += fmt::format("{:<24s} {:>7s} {:>10.2f}\n", g_events ? "total in ops" : "total (synchronised)", "",
                     total * 1e3);
  return out + span;
}

}  // namespace engine::profile
