// Per-element formulas shared by the CPU kernels (kernels/cpu) and the CUDA kernels
// (kernels/cuda): one definition of each, compiled for the host and, under nvcc, for the device.
// The kernels differ only in how they walk the elements (OpenMP loops, CUDA thread grids).
#pragma once
#include <cmath>
#include <type_traits>

#include "kernels/kernels.h"

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

// The element-wise functions (kernels::Unary) and their derivatives:
//   relu   y = max(x, 0)                  y' = [x > 0]
//   relu2  y = max(x, 0)^2                y' = 2 max(x, 0)
//   gelu   y = x Phi(x), Phi(x) = (1 + erf(x / sqrt2)) / 2
//                                         y' = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   silu   y = x s, s = sigmoid(x)        y' = s (1 + x (1 - s))
//   tanh   y = tanh x                     y' = 1 - y^2
//   sqrt   y = sqrt x                     y' = 1 / (2 sqrt x)
//   rsqrt  y = 1 / sqrt x                 y' = -y^3 / 2
//   exp    y = e^x                        y' = e^x
//   log    y = ln x                       y' = 1 / x
//   square y = x^2                        y' = 2x

// sigmoid without overflow: exp of a non-positive number only.
template <class T>
AVEY_HOST_DEVICE T sigmoid(T x) {
  using std::exp;
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
AVEY_HOST_DEVICE T unary_value(Unary f, T x) {
  using std::erf, std::exp, std::log, std::sqrt, std::tanh;
  switch (f) {
    case Unary::Relu: return x > T(0) ? x : T(0);
    case Unary::Relu2: return x > T(0) ? x * x : T(0);
    case Unary::Gelu: return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
    case Unary::Silu: return x * sigmoid(x);
    case Unary::Tanh: return tanh(x);
    case Unary::Sqrt: return sqrt(x);
    case Unary::Rsqrt: return T(1) / sqrt(x);
    case Unary::Exp: return exp(x);
    case Unary::Log: return log(x);
    case Unary::Square: return x * x;
  }
  return x;
}

template <class T>
AVEY_HOST_DEVICE T unary_derivative(Unary f, T x) {
  using std::erf, std::exp, std::sqrt, std::tanh;
  switch (f) {
    case Unary::Relu: return x > T(0) ? T(1) : T(0);
    case Unary::Relu2: return x > T(0) ? T(2) * x : T(0);
    case Unary::Gelu:
      return T(0.5) * (T(1) + erf(x * T(0.70710678118654752440))) +
             x * T(0.39894228040143267794) * exp(T(-0.5) * x * x);
    case Unary::Silu: {
      const T s = sigmoid(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Unary::Tanh: {
      const T t = tanh(x);
      return T(1) - t * t;
    }
    case Unary::Sqrt: return T(0.5) / sqrt(x);
    case Unary::Rsqrt: {
      const T r = T(1) / sqrt(x);
      return T(-0.5) * r * r * r;
    }
    case Unary::Exp: return exp(x);
    case Unary::Log: return T(1) / x;
    case Unary::Square: return T(2) * x;
  }
  return T(0);
}

// Calls fn(std::integral_constant<Unary, f>{}): inside, the function is a compile-time constant,
// so a loop over unary_value(F::value, x) compiles to a plain map with no switch in it.
template <class Fn>
inline void with_unary(Unary f, Fn&& fn) {
  switch (f) {
    case Unary::Relu: fn(std::integral_constant<Unary, Unary::Relu>{}); break;
    case Unary::Relu2: fn(std::integral_constant<Unary, Unary::Relu2>{}); break;
    case Unary::Gelu: fn(std::integral_constant<Unary, Unary::Gelu>{}); break;
    case Unary::Silu: fn(std::integral_constant<Unary, Unary::Silu>{}); break;
    case Unary::Tanh: fn(std::integral_constant<Unary, Unary::Tanh>{}); break;
    case Unary::Sqrt: fn(std::integral_constant<Unary, Unary::Sqrt>{}); break;
    case Unary::Rsqrt: fn(std::integral_constant<Unary, Unary::Rsqrt>{}); break;
    case Unary::Exp: fn(std::integral_constant<Unary, Unary::Exp>{}); break;
    case Unary::Log: fn(std::integral_constant<Unary, Unary::Log>{}); break;
    case Unary::Square: fn(std::integral_constant<Unary, Unary::Square>{}); break;
  }
}

// Calls fn(std::integral_constant<Binary, op>{}), as with_unary does for a unary function.
template <class Fn>
inline void with_binary(Binary op, Fn&& fn) {
  switch (op) {
    case Binary::Add: fn(std::integral_constant<Binary, Binary::Add>{}); break;
    case Binary::Sub: fn(std::integral_constant<Binary, Binary::Sub>{}); break;
    case Binary::Mul: fn(std::integral_constant<Binary, Binary::Mul>{}); break;
    case Binary::Div: fn(std::integral_constant<Binary, Binary::Div>{}); break;
  }
}

// Row L2 normalisation (kernels::NormEps), y = x * inv per row, from the row's sum of squares
// ss: the denominator d (saved for the backward) and its inverse (0 when d = 0: a zero row with
// eps = 0 stays zero). One definition for l2norm_rows on both backends and for the row norm that
// bias_act_split can write, so the two give the same bits.
template <class T>
AVEY_HOST_DEVICE T l2_denominator(NormEps mode, T ss, T eps) {
  using std::sqrt;
  switch (mode) {
    case NormEps::Outside: return sqrt(ss) + eps;
    case NormEps::Inside: return sqrt(ss + eps);
    case NormEps::Max: {
      const T s = sqrt(ss);
      return s < eps ? eps : s;
    }
  }
  return sqrt(ss);
}
template <class T>
AVEY_HOST_DEVICE T l2_inverse(T d) {
  return d > T(0) ? T(1) / d : T(0);
}

// PyTorch's clip coefficient for a gradient norm: min(1, max_norm / (norm + 1e-6)); max_norm <= 0
// disables clipping (1). A NaN norm gives NaN (torch.clamp keeps NaN), an infinite one 0.
AVEY_HOST_DEVICE double clip_coefficient(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  if (coef != coef) return coef;
  return coef < 1.0 ? coef : 1.0;
}

// One AdamW step's constants, formed in double (as PyTorch forms them in Python) and applied
// in T (PyTorch's opmath), and the update of one element in the order of PyTorch's fused kernel:
//   p *= 1 - lr wd (decayed elements only); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)       with g already scaled.
template <class T>
struct AdamWStep {
  T decay_factor, scale, beta1, beta2, one_minus_b1, one_minus_b2, step_size, bias2_sqrt, epsilon;

  AdamWStep(double lr, double b1, double b2, double eps, double wd, double bias1, double bias2, double grad_scale = 1)
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
