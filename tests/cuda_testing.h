// Helpers shared by the GPU tests (CUDA builds only): whether a GPU is there to run them, and
// NaN-poisoned allocations, so an element a kernel forgot to write fails the comparison.
#pragma once
#include "kernels/cuda/kernels.h"

namespace testing {

// For doctest::skip: the GPU tests are skipped on a machine without a usable GPU.
inline const bool kNoGpu = !kernels::cuda::available();

// While alive, every new GPU allocation is filled with NaN.
struct Poison {
  Poison() { kernels::cuda::poison_allocations(true); }
  ~Poison() { kernels::cuda::poison_allocations(false); }
  Poison(const Poison&) = delete;
  Poison& operator=(const Poison&) = delete;
};

}  // namespace testing
