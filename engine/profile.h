// Per-op GPU/CPU time, for finding what a step spends its time on.
//
// AVEY_PROFILE=1: every kernel dispatch (engine/dispatch.h) waits for the device before and
// after the kernel and adds the wall time to its op's row; report() prints the table, largest
// first. Synchronising after every op removes all overlap between the host and the device, so
// the total is an upper bound of a real step's time; the shares are what to read.
// AVEY_PROFILE=events (GPU): nothing waits; each op is bracketed by two events on the stream and
// report() reads the GPU time between them. Where the GPU is the bottleneck (the host queues
// ahead) that is the op's kernel time; the report also gives the span from the first op to the
// last and the part of it outside every op (kernels of unprofiled code, or the GPU idle,
// waiting for the host).
#pragma once
#include <string>
#include <string_view>

#include "engine/dtype.h"

namespace engine::profile {

bool enabled();
void set_enabled(bool on);  // the initial value: the environment variable AVEY_PROFILE (1 or events)
void reset();
std::string report();  // "op  calls  total ms  share" rows, largest total first

// A matrix product's row in the table: "matmul bf16 64x 256x768x1024 NT" (batch, m x n x k, op(A)
// op(B) transposed or not), so that one slow shape stands out; plain "matmul" when not profiling.
std::string matmul_label(DType dt, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb);

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
  int mark_ = -1;  // events mode: the opening event
};

}  // namespace engine::profile
