// AVEY_DISPATCH(op, t, kernel, args...): calls kernels::cpu::kernel<T>(args...) or
// kernels::cuda::kernel<T>(args...) for the device of tensor t, with T bound to its element
// type: float or double on the CPU, float or bf16 on the GPU. The arguments may use T, e.g.
//   AVEY_DISPATCH("relu", x, unary, Unary::Relu, x.numel(), x.data<T>(), y.data<T>());
// Every kernel therefore has the same signature on both backends (one declaration list:
// kernels/kernel_list.h). AVEY_DISPATCH_IN(ns, ...) does the same for another kernel set with
// ns::cpu and ns::cuda namespaces (Avey's own: AVEY_DISPATCH_IN(::avey::kernels, ...)).
#pragma once
#include "engine/profile.h"
#include "engine/tensor.h"
#include "kernels/kernels.h"
#ifdef AVEY_HAVE_CUDA
#define AVEY_DISPATCH_CUDA_IN(ns, op, t, kernel, ...)                            \
  switch (t.dtype()) {                                                           \
    case ::engine::DType::F32: {                                                 \
      using T = float;                                                           \
      ns::cuda::kernel<T>(__VA_ARGS__);                                          \
      break;                                                                     \
    }                                                                            \
    case ::engine::DType::BF16: {                                                \
      using T = ::kernels::bf16;                                                 \
      ns::cuda::kernel<T>(__VA_ARGS__);                                          \
      break;                                                                     \
    }                                                                            \
    default: ::engine::fail(op, "no CUDA kernel for " + t.describe());           \
  }
#else
#define AVEY_DISPATCH_CUDA_IN(ns, op, t, kernel, ...) \
  ::engine::fail(op, "this build has no CUDA backend (configure with -DAVEY_CUDA=ON where nvcc is present)");
#endif

#define AVEY_DISPATCH_IN(ns, op, t, kernel, ...)                                 \
  do {                                                                           \
    const ::engine::Tensor& dispatch_t_ = (t);                                   \
    ::engine::profile::Scope dispatch_prof_(op, dispatch_t_.device());           \
    if (dispatch_t_.device() == ::engine::Device::CPU) {                         \
      switch (dispatch_t_.dtype()) {                                             \
        case ::engine::DType::F32: {                                             \
          using T = float;                                                       \
          ns::cpu::kernel<T>(__VA_ARGS__);                                       \
          break;                                                                 \
        }                                                                        \
        case ::engine::DType::F64: {                                             \
          using T = double;                                                      \
          ns::cpu::kernel<T>(__VA_ARGS__);                                       \
          break;                                                                 \
        }                                                                        \
        default: ::engine::fail(op, "no CPU kernel for " + dispatch_t_.describe() + " (cast to f32)"); \
      }                                                                          \
    } else {                                                                     \
      AVEY_DISPATCH_CUDA_IN(ns, op, dispatch_t_, kernel, __VA_ARGS__)            \
    }                                                                            \
  } while (0)

#define AVEY_DISPATCH(op, t, kernel, ...) AVEY_DISPATCH_IN(::kernels, op, t, kernel, __VA_ARGS__)
