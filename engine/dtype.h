// Element types and devices a Tensor can have.
//   F32  the working type on the CPU, and the master copy of weights everywhere
//   F64  CPU only: gradient checks by finite differences need its precision
//   BF16 GPU activations and working weights in mixed precision (CPU: storage and conversion only)
//   I32  token ids and indices
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/bf16.h"

namespace engine {

using kernels::bf16;

enum class DType : uint8_t { F32, F64, BF16, I32 };
enum class Device : uint8_t { CPU, CUDA };

inline size_t size_of(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

inline const char* name_of(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

inline const char* name_of(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

inline bool is_floating(DType t) { return t != DType::I32; }

// The DType of a C++ element type: dtype_of<float>() == DType::F32.
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<bf16>() { return DType::BF16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& s);
std::string to_string(const Shape& s);  // "[2, 3]"

}  // namespace engine
