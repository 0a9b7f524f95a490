// bfloat16 storage type shared by the CPU and CUDA kernels: the top 16 bits of an IEEE float.
// Conversion from float rounds to nearest, ties to even (as PyTorch and the GPU do); NaN stays NaN.
#pragma once
#include <cstdint>
#include <cstring>

namespace kernels {

struct bf16 {
  uint16_t bits = 0;
};

inline float to_float(bf16 x) {
  uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16 to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                                  // round to nearest even
  return bf16{uint16_t(u >> 16)};
}

}  // namespace kernels
