// What every .cu file of the CUDA backend shares: error checking, the one stream, element
// loads/stores that compute in fp32 whatever the storage type, launch-size helpers, and the
// deterministic block reductions.
//
// Determinism: every reduction here has a fixed shape (which thread adds which element, in
// which order) that depends only on the problem size, never on timing; there are no float
// atomics anywhere in the backend, so a run repeats bit for bit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/bf16.h"
#include "kernels/cuda/memory.h"

namespace kernels::cuda {

// ---- errors: every CUDA call and every launch is checked; a failure throws std::runtime_error.
[[noreturn]] void fail(const char* what, const char* detail, const char* file, int line);
inline void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) fail(what, cudaGetErrorString(e), file, line);
}
#define AVEY_CUDA_CHECK(call) ::kernels::cuda::check((call), #call, __FILE__, __LINE__)
// After a <<<...>>> launch: reports a bad configuration (grid too large, too much shared memory).
#define AVEY_LAUNCH_CHECK(kernel_name) ::kernels::cuda::check(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)

cudaStream_t stream();  // the one stream all work is queued on

// Errors a kernel finds while running (an index out of range) are OR-ed into this device word
// (an integer atomic: order does not matter) and reported by synchronize() / copy_to_host().
enum DeviceError : unsigned { BadGatherIndex = 1, BadScatterIndex = 2, BadTarget = 4 };
unsigned* device_error_word();

// Scratch device memory from the caching allocator for the life of a scope. Releasing it while
// kernels that use it are still queued is safe: everything runs on one stream, so the next
// user of the block is queued after them.
struct Scratch {
  explicit Scratch(size_t n) : nbytes(n), ptr(allocate(n)) {}
  ~Scratch() { release(ptr, nbytes); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(ptr); }
  size_t nbytes;
  void* ptr;
};

// ---- element access: fp32 in registers, T in memory.
__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, int64_t i) { return __uint_as_float(uint32_t(p[i].bits) << 16); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, int64_t i, float v) { p[i].bits = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// v as T stores it, read back (bf16: rounded to nearest even; float: v itself).
template <class T> __device__ __forceinline__ float rounded(float v) {
  if constexpr (std::is_same_v<T, bf16>) return __bfloat162float(__float2bfloat16_rn(v));
  else return v;
}

// ---- 16-byte vectors: kVec<T> elements (8 bf16 or 4 floats) move as one 128-bit load or store,
// the widest a thread can issue; the memory-bound kernels use them where a row's length and the
// pointers allow (vec_ok), and fall back to one element a thread otherwise. Element i of a vector
// sits at the lower address (little-endian: bf16 element 2k is the low half of word k).
template <class T> constexpr int kVec = int(16 / sizeof(T));

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

__device__ __forceinline__ void load_vec(const float* p, int64_t i, float (&v)[4]) {
  const float4 u = *reinterpret_cast<const float4*>(p + i);
  v[0] = u.x, v[1] = u.y, v[2] = u.z, v[3] = u.w;
}
__device__ __forceinline__ void load_vec(const bf16* p, int64_t i, float (&v)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p + i);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) v[2 * k] = __uint_as_float(w[k] << 16), v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
}
__device__ __forceinline__ void store_vec(float* p, int64_t i, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store_vec(bf16* p, int64_t i, const float (&v)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k)
    w[k] = uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k]))) |
           (uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * k + 1]))) << 16);
  *reinterpret_cast<uint4*>(p + i) = make_uint4(w[0], w[1], w[2], w[3]);
}

// W elements at i in fp32: one element (W = 1) or one 16-byte vector (W = kVec<T>). Lets one
// kernel body serve both its vector path and its one-element fallback.
template <int W, class T> __device__ __forceinline__ void load_n(const T* p, int64_t i, float (&v)[W]) {
  if constexpr (W == 1) v[0] = load(p, i);
  else load_vec(p, i, v);
}
template <int W, class T> __device__ __forceinline__ void store_n(T* p, int64_t i, const float (&v)[W]) {
  if constexpr (W == 1) store(p, i, v[0]);
  else store_vec(p, i, v);
}

// ---- launch sizes
constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never above the limit.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 65536 ? 65536 : b));
}
// Threads for one block per row of `cols` elements: a multiple of 32, at most 1024.
// About four elements a thread (more loads in flight, cheaper block reductions than one a thread).
inline int threads_for_row(int64_t cols) {
  int64_t t = (cols / 4 + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > 1024 ? 1024 : t));
}

#define AVEY_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// ---- block reductions (blockDim.x a multiple of 32). Every thread gets the result. The tree is
// fixed by blockDim, so results are reproducible. `shared` holds 32 floats; the trailing
// __syncthreads lets a caller reuse it for the next reduction at once.
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
template <class Op> __device__ __forceinline__ float warp_reduce(float v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <class Op> __device__ float block_reduce(float v, Op op, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = shared[0];
  for (int w = 1; w < nwarps; ++w) r = op(r, shared[w]);
  __syncthreads();
  return r;
}

}  // namespace kernels::cuda
