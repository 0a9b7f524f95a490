// Facts about the machine the engine runs on: whether a GPU is there, its name, and the peak
// arithmetic rate that MFU (model FLOPs utilisation = achieved FLOP/s / peak) is measured against.
#pragma once
#include <string>

#include "engine/dtype.h"

namespace engine {

bool cuda_build();      // compiled with the CUDA backend
bool cuda_available();  // ... and a GPU is visible
std::string device_name(Device device);  // "NVIDIA H100 80GB HBM3", "cpu (2 threads)"

// Dense peak FLOP/s for matrix products in this dtype: from a table of GPU names (bf16 tensor
// cores, fp32 without TF32), or for the CPU threads x 32 flops/cycle (AVX2: 2 FMA units x 8
// floats x 2) x the clock in /proc/cpuinfo. 0 when unknown.
double peak_flops(Device device, DType dtype);

}  // namespace engine
