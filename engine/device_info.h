// Facts about the machine the engine runs on: whether a GPU is there, its name, and the peak
// arithmetic rate that MFU (model FLOPs utilisation = achieved FLOP/s / peak) is measured against.
#pragma once
#include <string>

#include "engine/dtype.h"

namespace engine {

bool cuda_build();      // compiled with the CUDA backend
bool cuda_available();  // ... and a GPU is visible
int cuda_device_count();  // the GPUs visible (0 without the CUDA backend)
std::string device_name(Device device);  // "NVIDIA H100 80GB HBM3", "cpu (2 threads)"

// Dense peak FLOP/s for matrix products in this dtype: from a table of GPU names (bf16 tensor
// cores, fp32 without TF32), or for the CPU threads x 32 flops/cycle (AVX2: 2 FMA units x 8
// floats x 2) x the clock in /proc/cpuinfo. 0 when unknown.
double peak_flops(Device device, DType dtype);

// Peak memory of the work since reset_peak_memory(device). GPU: the high-water mark of the bytes
// tensors hold (the caching allocator's count, cached free blocks aside). CPU: the process's peak
// resident set (VmHWM in /proc/self/status), everything resident included; the reset returns the
// CPU allocator's cached blocks to the system and restarts the mark through /proc/self/clear_refs
// (where the kernel refuses, the mark is the process's lifetime peak). 0 when unknown.
void reset_peak_memory(Device device);
int64_t peak_memory_bytes(Device device);

}  // namespace engine
