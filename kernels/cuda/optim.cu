// The optimizer's kernels: one fused AdamW step, and sums of squares for gradient norms.
//
// adamw: four elements a thread where the sizes and pointers allow, else one (grid-stride); the
// same operations in the same order as the CPU kernel (kernels/elementwise_math.h), in fp32.
// segment_sum_squares: grid (blocks per segment, segments); each block takes a grid-stride
// share of its segment, accumulates x^2 in fp64 and reduces with a fixed tree into one partial;
// the host adds each segment's partials in order. The shape depends only on the sizes, so the
// result repeats bit for bit (it is not bitwise the CPU's, which blocks differently).
// clip_norm: the same partials, added by one device thread in the host's order, so a training
// step never waits for the GPU to learn its clip coefficient; adamw reads it from there.
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"
#include "kernels/elementwise_math.h"

namespace kernels::cuda {

template <class T>
__global__ void adamw_kernel(int64_t n, T* p, const T* g, T* m, T* v, const uint8_t* decay, bf16* p_bf16,
                             AdamWStep<T> step, const double* grad_scale) {
  if (grad_scale) step.scale = T(*grad_scale);
  AVEY_GRID_STRIDE(i, n) {
    T mi = m[i], vi = v[i];
    const T pi = step.update(p[i], g[i], mi, vi, decay == nullptr || decay[i]);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi;
    if (p_bf16) store(p_bf16, i, float(pi));
  }
}

// The same, four fp32 elements a thread: 16-byte loads and stores of p, g, m and v, the decay
// flags as one 4-byte word and the bf16 copy as one 8-byte store (the step moves ~31 bytes an
// element: it is bound by memory traffic, and wide accesses keep more of it in flight).
__global__ void adamw_vec4_kernel(uint32_t nvec, float* p, const float* g, float* m, float* v, const uint8_t* decay,
                                  bf16* p_bf16, AdamWStep<float> step, const double* grad_scale) {
  if (grad_scale) step.scale = float(*grad_scale);
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    const int64_t i = int64_t(j) * 4;
    float pi[4], gi[4], mi[4], vi[4];
    load_vec(p, i, pi), load_vec(g, i, gi), load_vec(m, i, mi), load_vec(v, i, vi);
    const uchar4 dk = decay ? reinterpret_cast<const uchar4*>(decay)[j] : make_uchar4(1, 1, 1, 1);
    const bool dd[4] = {dk.x != 0, dk.y != 0, dk.z != 0, dk.w != 0};
#pragma unroll
    for (int k = 0; k < 4; ++k) pi[k] = step.update(pi[k], gi[k], mi[k], vi[k], dd[k]);
    store_vec(p, i, pi), store_vec(m, i, mi), store_vec(v, i, vi);
    if (p_bf16) {
      uint32_t w[2];
#pragma unroll
      for (int k = 0; k < 2; ++k)
        w[k] = uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(pi[2 * k]))) |
               (uint32_t(__bfloat16_as_ushort(__float2bfloat16_rn(pi[2 * k + 1]))) << 16);
      reinterpret_cast<uint2*>(p_bf16)[j] = make_uint2(w[0], w[1]);
    }
  }
}

template <class T> void adamw(const AdamWArgs<T>& args) {
  const auto& [n, p, g, m, v, decay, p_bf16, lr, b1, b2, eps, wd, bias1, bias2, grad_scale] = args;
  if (n <= 0) return;
  const AdamWStep<T> step(lr, b1, b2, eps, wd, bias1, bias2);  // the scale is read on the device
  const auto aligned = [](const void* q, uintptr_t bytes) { return !q || (reinterpret_cast<uintptr_t>(q) % bytes) == 0; };
  if constexpr (std::is_same_v<T, float>) {
    if (n % 4 == 0 && n / 4 <= int64_t(UINT32_MAX) && aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v) &&
        aligned(decay, 4) && aligned(p_bf16, 8)) {
      adamw_vec4_kernel<<<blocks_for(n / 4), kThreads, 0, stream()>>>(uint32_t(n / 4), p, g, m, v, decay, p_bf16, step,
                                                                     grad_scale);
      AVEY_LAUNCH_CHECK("adamw");
      return;
    }
  }
  adamw_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, p, g, m, v, decay, p_bf16, step, grad_scale);
  AVEY_LAUNCH_CHECK("adamw");
}

// ---------------------------------------------------------------- sums of squares

constexpr int kPartsPerSegment = 512;

template <class T>
__global__ void sum_squares_kernel(const int64_t* offset, const int64_t* count, const T* x, double* partial) {
  __shared__ double shared[32];
  const int64_t n = count[blockIdx.y];
  const T* xs = x + offset[blockIdx.y];
  double s = 0;
  AVEY_GRID_STRIDE(i, n) {
    const double xi = double(xs[i]);
    s += xi * xi;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w) s += shared[w];
    partial[int64_t(blockIdx.y) * gridDim.x + blockIdx.x] = s;
  }
}

template <class T>
void segment_sum_squares(int64_t nseg, const int64_t* offset, const int64_t* count, const T* x, double* out) {
  if (nseg <= 0) return;
  if (nseg > 65535) fail("segment_sum_squares", "more than 65535 segments", __FILE__, __LINE__);
  Scratch dev_offset(size_t(nseg) * sizeof(int64_t)), dev_count(size_t(nseg) * sizeof(int64_t));
  copy_to_device(dev_offset.ptr, offset, dev_offset.nbytes);
  copy_to_device(dev_count.ptr, count, dev_count.nbytes);
  Scratch partial(size_t(nseg) * kPartsPerSegment * sizeof(double));
  sum_squares_kernel<<<dim3(kPartsPerSegment, unsigned(nseg)), kThreads, 0, stream()>>>(
      dev_offset.as<int64_t>(), dev_count.as<int64_t>(), x, partial.as<double>());
  AVEY_LAUNCH_CHECK("segment_sum_squares");
  std::vector<double> host(size_t(nseg) * kPartsPerSegment);
  copy_to_host(host.data(), partial.ptr, partial.nbytes);
  for (int64_t s = 0; s < nseg; ++s) {
    double sum = 0;
    for (int k = 0; k < kPartsPerSegment; ++k) sum += host[size_t(s * kPartsPerSegment + k)];
    out[s] = sum;
  }
}

// The norm and the clip coefficient from one segment's partials, on the device: the partials
// are added in the order the host adds them in segment_sum_squares, so the norm has the same bits.
__global__ void clip_norm_finish_kernel(const double* partial, double max_norm, double* out) {
  double sum = 0;
  for (int k = 0; k < kPartsPerSegment; ++k) sum += partial[k];
  out[0] = sqrt(sum);
  out[1] = clip_coefficient(out[0], max_norm);
}

template <class T> void clip_norm(int64_t n, const T* x, double max_norm, double* out) {
  Scratch partial(kPartsPerSegment * sizeof(double)), range(2 * sizeof(int64_t));
  const int64_t offset_count[2] = {0, n};
  copy_to_device(range.ptr, offset_count, range.nbytes);
  sum_squares_kernel<<<dim3(kPartsPerSegment, 1), kThreads, 0, stream()>>>(range.as<int64_t>(), range.as<int64_t>() + 1,
                                                                         x, partial.as<double>());
  AVEY_LAUNCH_CHECK("clip_norm");
  clip_norm_finish_kernel<<<1, 1, 0, stream()>>>(partial.as<double>(), max_norm, out);
  AVEY_LAUNCH_CHECK("clip_norm");
}

template <class T> double sum_squares(int64_t n, const T* x) {
  const int64_t offset = 0;
  double out = 0;
  segment_sum_squares(1, &offset, &n, x, &out);
  return out;
}

AVEY_INSTANTIATE(adamw, float)
AVEY_INSTANTIATE(clip_norm, float)
AVEY_INSTANTIATE(sum_squares, float)
AVEY_INSTANTIATE(segment_sum_squares, float)

}  // namespace kernels::cuda
