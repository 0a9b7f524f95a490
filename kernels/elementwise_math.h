// Per-element formulas shared by the CPU kernels (kernels/cpu) and the CUDA kernels
// (kernels/cuda): one definition of each, compiled for the host and, under nvcc, for the device.
// The kernels differ only in how they walk the elements (OpenMP loops, CUDA thread grids).
#pragma once
#include <cmath>

#include "kernels/cpu/kernels.h"

#if defined(__CUDACC__)
#define AVEY_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define AVEY_HOST_DEVICE inline
#endif

namespace kernels {

// x (op) y for the engine's binary ops.
template <class T>
AVEY_HOST_DEVICE T apply(Binary op, T x, T y) {
  switch (op) {
    case Binary::Add: return x + y;
    case Binary::Sub: return x - y;
    case Binary::Mul: return x * y;
    case Binary::Div: return x / y;
  }
  return x;
}

// One AdamW step's constants, formed in double (as PyTorch forms them in Python) and applied
// in T (PyTorch's opmath), and the update of one element in the order of PyTorch's fused kernel:
//   p *= 1 - lr wd (decayed elements only); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)       with g already scaled.
template <class T>
struct AdamWStep {
  T decay_factor, scale, beta1, beta2, one_minus_b1, one_minus_b2, step_size, bias2_sqrt, epsilon;

  AdamWStep(double lr, double b1, double b2, double eps, double wd, double bias1, double bias2, double grad_scale)
      : decay_factor(T(1.0 - lr * wd)), scale(T(grad_scale)), beta1(T(b1)), beta2(T(b2)), one_minus_b1(T(1.0 - b1)),
        one_minus_b2(T(1.0 - b2)), step_size(T(lr / bias1)), bias2_sqrt(T(std::sqrt(bias2))), epsilon(T(eps)) {}

  // Updates m and v in place; returns the new parameter.
  AVEY_HOST_DEVICE T update(T p, T g, T& m, T& v, bool decay) const {
    using std::sqrt;
    const T gi = g * scale;
    if (decay) p *= decay_factor;
    m = beta1 * m + one_minus_b1 * gi;
    v = beta2 * v + one_minus_b2 * gi * gi;
    return p - step_size * m / (sqrt(v) / bias2_sqrt + epsilon);
  }
};

}  // namespace kernels
