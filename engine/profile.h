// Per-op GPU/CPU time, for finding what a step spends its time on (AVEY_PROFILE=1).
//
// When enabled, every kernel dispatch (engine/dispatch.h) waits for the device before and after
// the kernel and adds the wall time to its op's row; report() prints the table, largest first.
// Synchronising after every op removes all overlap between the host and the device, so the
// total is an upper bound of a real step's time; the shares are what to read.
#pragma once
#include <string>
#include <string_view>

#include "engine/dtype.h"

namespace engine::profile {

bool enabled();
void set_enabled(bool on);  // the initial value: the environment variable AVEY_PROFILE=1
void reset();
std::string report();  // "op  calls  total ms  share" rows, largest total first

class Scope {
 public:
  Scope(std::string_view op, Device device) {
    if (enabled()) begin(op, device);
  }
  ~Scope() {
    if (active_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void begin(std::string_view op, Device device);
  void end();
  bool active_ = false;
  std::string op_;
  Device device_ = Device::CPU;
  double t0_ = 0;
};

}  // namespace engine::profile
