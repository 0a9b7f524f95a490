#include "engine/device_info.h"

#include <fmt/format.h>
#include <omp.h>

#include <fstream>
#include <string>

#include "engine/cpu_allocator.h"

#ifdef AVEY_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/memory.h"
#endif

namespace engine {

bool cuda_build() {
#ifdef AVEY_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#ifdef AVEY_HAVE_CUDA
  return kernels::cuda::available();
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef AVEY_HAVE_CUDA
  if (!kernels::cuda::available()) return 0;  // no driver, or no device
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
#else
  return 0;
#endif
}

static double cpu_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("cpu MHz", 0) == 0) return std::stod(line.substr(line.find(':') + 1)) / 1000.0;
  return 0;
}

std::string device_name(Device device) {
#ifdef AVEY_HAVE_CUDA
  if (device == Device::CUDA) return kernels::cuda::device_name();
#endif
  return device == Device::CPU ? fmt::format("cpu ({} threads)", omp_get_max_threads()) : "cuda";
}

double peak_flops(Device device, DType dtype) {
  if (device == Device::CPU) {
    const double per_cycle = dtype == DType::F64 ? 16 : 32;
    return omp_get_max_threads() * per_cycle * cpu_ghz() * 1e9;
  }
  // Dense (no sparsity) datasheet rates: bf16 tensor cores, or fp32 on the CUDA cores.
  struct Row {
    const char* name;
    double bf16, fp32;
  };
  static const Row table[] = {
      {"H100 SXM", 989e12, 67e12}, {"H100 80GB HBM3", 989e12, 67e12}, {"H100 PCIe", 756e12, 51e12},
      {"H100 NVL", 835e12, 60e12}, {"H200", 989e12, 67e12},           {"A100", 312e12, 19.5e12},
  };
  const std::string name = device_name(device);
  for (const Row& r : table)
    if (name.find(r.name) != std::string::npos) return dtype == DType::BF16 ? r.bf16 : r.fp32;
  return 0;
}

void reset_peak_memory(Device device) {
#ifdef AVEY_HAVE_CUDA
  if (device == Device::CUDA) {
    kernels::cuda::reset_peak();
    return;
  }
#endif
  if (device == Device::CPU) {
    cpu_allocator::empty_cache();
    std::ofstream("/proc/self/clear_refs") << "5";  // 5: reset the peak resident set size
  }
}

int64_t peak_memory_bytes(Device device) {
#ifdef AVEY_HAVE_CUDA
  if (device == Device::CUDA) return int64_t(kernels::cuda::peak_bytes_in_use());
#endif
  if (device != Device::CPU) return 0;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   123456 kB"
  return 0;
}

}  // namespace engine
