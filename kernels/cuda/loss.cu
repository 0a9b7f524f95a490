// Cross-entropy forward and backward over rows of logits.
//
// One block per row (up to 1024 threads striding over the vocabulary). Forward: the row's max
// and sum of exp(x - max) by the fixed block tree (deterministic), lse = max + log(sum),
// loss = lse - x[target]. Backward: glogits = gloss * scale * (exp(x - lse) - onehot(target)).
// All in fp32. For bf16 the saved lse (about 10, stored with 8 bits: steps of 1/16) would put
// errors of several percent into exp(x - lse), so bf16 backward recomputes lse from the row.
// A target outside [0, vocab) that is not `ignore` gives NaN and raises the device error word.
//
// cross_entropy_bf16 (the tied head's path in mixed precision) does forward and backward in one
// kernel on bf16 logits, one block per row: one read of the row for its max and sum of exp
// (each thread keeps a running max and rescales its sum when the max grows; the block then
// combines them through two fixed trees), the loss in fp32, and a second read (from L2: the
// rows in flight fit in it) to write the gradient over the logits in place. Against converting
// the logits to fp32 first and running the two kernels above, that moves ~3 bytes per logit
// instead of ~16. Rows whose length is a multiple of 8 are read as 16-byte vectors, and when
// such a row fits in shared memory it is staged there (one read from global memory, see below).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"

namespace kernels::cuda {

template <class T> __device__ float row_lse(int64_t vocab, const T* xr, float* shared) {
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) m = fmaxf(m, load(xr, c));
  m = block_reduce(m, Max{}, shared);
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) s += expf(load(xr, c) - m);
  return m + logf(block_reduce(s, Sum{}, shared));
}

template <class T>
__global__ void cross_entropy_kernel(int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                                     T* lse, unsigned* error) {
  __shared__ float shared[32];
  const T* xr = logits + int64_t(blockIdx.x) * vocab;
  const float l = row_lse(vocab, xr, shared);
  if (threadIdx.x != 0) return;
  const int32_t t = target[blockIdx.x];
  store(lse, blockIdx.x, l);
  if (t == ignore) {
    store(loss, blockIdx.x, 0.f);
  } else if (t < 0 || t >= vocab) {
    store(loss, blockIdx.x, NAN);
    atomicOr(error, unsigned(BadTarget));
  } else {
    store(loss, blockIdx.x, l - load(xr, t));
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                                              const T* lse, const T* gloss, float scale, T* glogits) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * vocab;
  const int32_t t = target[blockIdx.x];
  if (t == ignore) {
    for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) store(glogits, base + c, 0.f);
    return;
  }
  const float l = std::is_same_v<T, bf16> ? row_lse(vocab, logits + base, shared) : load(lse, blockIdx.x);
  const float k = load(gloss, 0) * scale;
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x)
    store(glogits, base + c, k * (expf(load(logits, base + c) - l) - (c == t ? 1.f : 0.f)));
}

template <class T>
void cross_entropy(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore, T* loss,
                   T* lse) {
  if (rows <= 0) return;
  cross_entropy_kernel<<<unsigned(rows), threads_for_row(vocab), 0, stream()>>>(vocab, logits, target, ignore, loss,
                                                                                lse, device_error_word());
  AVEY_LAUNCH_CHECK("cross_entropy");
}

template <class T>
void cross_entropy_backward(int64_t rows, int64_t vocab, const T* logits, const int32_t* target, int32_t ignore,
                            const T* lse, const T* gloss, double scale, T* glogits) {
  if (rows <= 0) return;
  cross_entropy_backward_kernel<<<unsigned(rows), threads_for_row(vocab), 0, stream()>>>(
      vocab, logits, target, ignore, lse, gloss, float(scale), glogits);
  AVEY_LAUNCH_CHECK("cross_entropy_backward");
}

// Each thread visits the elements c = tid, tid + blockDim, ... of its row, or with `vec` (the
// row length a multiple of 8, the logits 16-byte aligned) the 8-element vectors tid, tid +
// blockDim, ...; f(c, x) for each, in the same order for both passes.
template <class F> __device__ __forceinline__ void for_row(const bf16* xr, int64_t vocab, bool vec, F&& f) {
  if (vec) {
    for (int64_t c = int64_t(threadIdx.x) * 8; c < vocab; c += int64_t(blockDim.x) * 8) {
      float v[8];
      load_vec(xr, c, v);
#pragma unroll
      for (int k = 0; k < 8; ++k) f(c + k, v[k]);
    }
  } else {
    for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) f(c, load(xr, c));
  }
}

__global__ void cross_entropy_bf16_kernel(int64_t vocab, bf16* logits, const int32_t* target, int32_t ignore,
                                          float* loss, float scale, bool vec, unsigned* error) {
  __shared__ float shared[32];
  bf16* xr = logits + int64_t(blockIdx.x) * vocab;
  const int32_t t = target[blockIdx.x];
  const bool bad = t != ignore && (t < 0 || t >= vocab);
  float m = -INFINITY, s = 0.f;
  for_row(xr, vocab, vec, [&](int64_t, float x) {
    if (x > m) s = s * expf(m - x) + 1.f, m = x;
    else s += expf(x - m);
  });
  const float mx = block_reduce(m, Max{}, shared);
  // the target's logit is read before the barrier inside the next reduction: after it, other
  // threads overwrite the row with its gradient
  const float xt = threadIdx.x == 0 && t != ignore && !bad ? load(xr, t) : 0.f;
  const float lse = mx + logf(block_reduce(m == -INFINITY ? 0.f : s * expf(m - mx), Sum{}, shared));
  if (threadIdx.x == 0) {
    loss[blockIdx.x] = t == ignore ? 0.f : (bad ? NAN : lse - xt);
    if (bad) atomicOr(error, unsigned(BadTarget));
  }
  if (scale == 0.f) return;
  const float k = t == ignore ? 0.f : scale;
  if (vec) {
    for (int64_t c = int64_t(threadIdx.x) * 8; c < vocab; c += int64_t(blockDim.x) * 8) {
      float v[8];
      load_vec(xr, c, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = k * (expf(v[j] - lse) - (c + j == t ? 1.f : 0.f));
      store_vec(xr, c, v);
    }
  } else {
    for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x)
      store(xr, c, k * (expf(load(xr, c) - lse) - (c == t ? 1.f : 0.f)));
  }
}

// The same with the row staged in shared memory (rows of 16-byte vectors that fit: the vocabulary
// of the GPT-2 family takes ~100 KB, two blocks a multiprocessor): the row is read from global
// memory once, 16 bytes a load and four loads in flight a thread, and every later pass reads the
// thread's own vectors back from shared memory. Each thread's max, then sum of exp(x - max),
// then its part of the gradient; the block combines the max and the sums by the fixed trees.
constexpr int kRowThreads = 512;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int64_t kMaxStagedRowBytes = 110 * 1024;

__global__ void __launch_bounds__(kRowThreads) cross_entropy_bf16_staged_kernel(int64_t vocab, bf16* logits,
                                                                                const int32_t* target, int32_t ignore,
                                                                                float* loss, float scale,
                                                                                unsigned* error) {
  extern __shared__ uint4 row[];
  __shared__ float shared[32];
  uint4* xr = reinterpret_cast<uint4*>(logits + int64_t(blockIdx.x) * vocab);
  const int nvec = int(vocab / 8);
  const int32_t t = target[blockIdx.x];
  const bool bad = t != ignore && (t < 0 || t >= vocab);
  auto unpack = [](const uint4& u, float (&v)[8]) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) v[2 * k] = __uint_as_float(w[k] << 16), v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
  };
  float m = -INFINITY;
#pragma unroll 4
  for (int j = threadIdx.x; j < nvec; j += kRowThreads) {
    const uint4 u = xr[j];
    row[j] = u;
    float v[8];
    unpack(u, v);
#pragma unroll
    for (int k = 0; k < 8; ++k) m = fmaxf(m, v[k]);
  }
  const float mx = block_reduce(m, Max{}, shared);  // its barrier also publishes the staged row
  // e^(x - c) as 2^(x log2 e - c log2 e): one multiply-add and the hardware's exp2 (the kernel was
  // bound as much by expf's longer sequence as by memory; relative error ~1e-6, far below bf16's)
  const float mx2 = mx * kLog2e;
  float s = 0.f;
  for (int j = threadIdx.x; j < nvec; j += kRowThreads) {
    float v[8];
    unpack(row[j], v);
#pragma unroll
    for (int k = 0; k < 8; ++k) s += exp2f(fmaf(v[k], kLog2e, -mx2));
  }
  const float lse = mx + logf(block_reduce(s, Sum{}, shared)), lse2 = lse * kLog2e;
  if (threadIdx.x == 0) {
    const float xt = t != ignore && !bad ? __uint_as_float(uint32_t(reinterpret_cast<const bf16*>(row)[t].bits) << 16) : 0.f;
    loss[blockIdx.x] = t == ignore ? 0.f : (bad ? NAN : lse - xt);
    if (bad) atomicOr(error, unsigned(BadTarget));
  }
  if (scale == 0.f) return;
  const float k = t == ignore ? 0.f : scale;
  for (int j = threadIdx.x; j < nvec; j += kRowThreads) {
    float v[8];
    unpack(row[j], v);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = k * (exp2f(fmaf(v[e], kLog2e, -lse2)) - (j * 8 + e == t ? 1.f : 0.f));
    store_vec(logits + int64_t(blockIdx.x) * vocab, int64_t(j) * 8, v);
  }
}

void cross_entropy_bf16(int64_t rows, int64_t vocab, bf16* logits, const int32_t* target, int32_t ignore, float* loss,
                        double grad_scale) {
  if (rows <= 0) return;
  const bool vec = vocab % 8 == 0 && aligned16(logits);
  if (vec && vocab * 2 <= kMaxStagedRowBytes) {
    static const bool configured = [] {
      AVEY_CUDA_CHECK(cudaFuncSetAttribute(cross_entropy_bf16_staged_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(kMaxStagedRowBytes)));
      return true;
    }();
    (void)configured;
    cross_entropy_bf16_staged_kernel<<<unsigned(rows), kRowThreads, size_t(vocab) * 2, stream()>>>(
        vocab, logits, target, ignore, loss, float(grad_scale), device_error_word());
    AVEY_LAUNCH_CHECK("cross_entropy_bf16");
    return;
  }
  cross_entropy_bf16_kernel<<<unsigned(rows), threads_for_row(vec ? vocab / 2 : vocab), 0, stream()>>>(
      vocab, logits, target, ignore, loss, float(grad_scale), vec, device_error_word());
  AVEY_LAUNCH_CHECK("cross_entropy_bf16");
}

AVEY_INSTANTIATE_CUDA(cross_entropy)
AVEY_INSTANTIATE_CUDA(cross_entropy_backward)

}  // namespace kernels::cuda
