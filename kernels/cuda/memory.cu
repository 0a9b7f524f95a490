// Device memory: the stream, the caching allocator, copies, synchronisation, error reporting,
// the two kernels every dtype needs (fill, convert), and the parameters' gradients in one pass
// (accumulate, accumulate_grads).
//
// Caching allocator: a request is rounded up to a size class (a multiple of 512 bytes below
// 1 MiB, else 1/8 of its power of two, so at most 12.5% is wasted) and served from that class's
// free list, else by cudaMalloc. release() puts the block back on its list. A training step
// repeats the same shapes, so after the first step it allocates nothing new. A block can be
// reused as soon as it is released, even while queued kernels still read it, because all work
// runs in order on one stream. When cudaMalloc fails, the cache is emptied and it tries again.
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"

namespace kernels::cuda {

void fail(const char* what, const char* detail, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error: ") + what + ": " + detail + " (" + file + ":" +
                           std::to_string(line) + ")");
}

bool available() {
  static const bool ok = [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    cudaGetLastError();  // clear the sticky "no device" error
    return e == cudaSuccess && n > 0;
  }();
  return ok;
}

std::string device_name() {
  if (!available()) return "no CUDA device";
  int dev = 0;
  AVEY_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  AVEY_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created;
    AVEY_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

// ---------------------------------------------------------------- caching allocator

namespace {

size_t size_class(size_t n) {
  if (n <= (size_t(1) << 20)) return (n + 511) / 512 * 512;
  size_t p = 1;
  while (p < n) p <<= 1;
  const size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct Allocator {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // size class -> cached blocks
  size_t in_use = 0, peak = 0, cached = 0;
  bool poison = false;

  void* allocate(size_t n) {
    std::lock_guard<std::mutex> lock(mutex);
    const size_t c = size_class(n);
    void* p = nullptr;
    auto& list = free_lists[c];
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
      cached -= c;
    } else if (cudaMalloc(&p, c) != cudaSuccess) {
      cudaGetLastError();
      empty_locked();
      cudaError_t e = cudaMalloc(&p, c);
      if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        throw std::runtime_error("CUDA out of memory: asked for " + std::to_string(c) + " bytes with " +
                                 std::to_string(in_use) + " in use by tensors, " + std::to_string(free_b) +
                                 " free of " + std::to_string(total_b) + " (" + cudaGetErrorString(e) + ")");
      }
    }
    in_use += c;
    if (in_use > peak) peak = in_use;
    if (poison) AVEY_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, c, stream()));
    return p;
  }

  void release(void* p, size_t n) {
    std::lock_guard<std::mutex> lock(mutex);
    const size_t c = size_class(n);
    free_lists[c].push_back(p);
    in_use -= c;
    cached += c;
  }

  void empty_locked() {
    AVEY_CUDA_CHECK(cudaStreamSynchronize(stream()));
    for (auto& [c, list] : free_lists)
      for (void* p : list) AVEY_CUDA_CHECK(cudaFree(p));
    free_lists.clear();
    cached = 0;
  }
};

// Never destroyed: tensors released during static destruction still find it.
Allocator& allocator() {
  static Allocator* a = new Allocator;
  return *a;
}

}  // namespace

void* allocate(size_t nbytes) { return allocator().allocate(nbytes == 0 ? 1 : nbytes); }
void release(void* ptr, size_t nbytes) {
  if (ptr) allocator().release(ptr, nbytes == 0 ? 1 : nbytes);
}
void empty_cache() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().empty_locked();
}
size_t bytes_in_use() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  return allocator().in_use;
}
size_t peak_bytes_in_use() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  return allocator().peak;
}
void reset_peak() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().peak = allocator().in_use;
}

void poison_allocations(bool on) {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().poison = on;
}

// ---------------------------------------------------------------- errors found on the device

unsigned* device_error_word() {
  static unsigned* word = [] {
    void* p = nullptr;
    AVEY_CUDA_CHECK(cudaMalloc(&p, sizeof(unsigned)));
    AVEY_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(unsigned), stream()));
    return static_cast<unsigned*>(p);
  }();
  return word;
}

// Waits for the stream, then throws if a kernel reported a bad index since the last check.
void synchronize() {
  unsigned err = 0;
  AVEY_CUDA_CHECK(cudaMemcpyAsync(&err, device_error_word(), sizeof err, cudaMemcpyDeviceToHost, stream()));
  AVEY_CUDA_CHECK(cudaStreamSynchronize(stream()));
  if (err == 0) return;
  AVEY_CUDA_CHECK(cudaMemsetAsync(device_error_word(), 0, sizeof err, stream()));
  std::string what;
  if (err & BadGatherIndex) what += " gather_rows: an index is outside the table;";
  if (err & BadScatterIndex) what += " scatter_add_rows: an index is outside the table;";
  if (err & BadTarget) what += " cross_entropy: a target is outside [0, vocab) and is not the ignore index;";
  throw std::out_of_range("found on the GPU:" + what);
}

// ---------------------------------------------------------------- copies

void copy_to_device(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  // From pageable memory this returns once the source has been staged: the caller may free it.
  AVEY_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream()));
}
void copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  AVEY_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()));
  synchronize();
}
void copy_on_device(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  AVEY_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream()));
}
void zero(void* dst, size_t nbytes) {
  if (nbytes == 0) return;
  AVEY_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, stream()));
}

// ---------------------------------------------------------------- fill and convert
// Grid-stride over whole vectors first (nvec of them, 16 bytes of y a store: 0 when a pointer is
// not 16-byte aligned), then one element a thread for the rest.

namespace {
template <class T> __device__ double to_double(T v) {
  if constexpr (std::is_same_v<T, bf16>) return double(load(&v, 0));
  else return double(v);
}
// Same rounding as the CPU: bf16 from double goes through float; int32 rounds half away from 0.
template <class D> __device__ D from_double(double v) {
  if constexpr (std::is_same_v<D, bf16>) {
    bf16 r;
    store(&r, 0, float(v));
    return r;
  } else if constexpr (std::is_same_v<D, int32_t>) {
    return int32_t(llround(v));
  } else {
    return D(v);
  }
}
// float <-> bf16 (and either to itself) goes through fp32 and moves as vectors; the conversions
// to or from double and int32 go through double, one element at a time.
template <class S, class D>
constexpr bool kViaFloat = (std::is_same_v<S, float> || std::is_same_v<S, bf16>) &&
                           (std::is_same_v<D, float> || std::is_same_v<D, bf16>);
// Elements a vector step of convert: one 16-byte vector of the narrower type.
template <class S, class D> constexpr int kConvertVec = kVec<S> > kVec<D> ? kVec<S> : kVec<D>;
}  // namespace

template <class T> __global__ void fill_kernel(int64_t n, int64_t nvec, T* y, T v) {
  constexpr int V = kVec<T>;
  uint4 u;
#pragma unroll
  for (int k = 0; k < V; ++k) reinterpret_cast<T*>(&u)[k] = v;
  AVEY_GRID_STRIDE(j, nvec) reinterpret_cast<uint4*>(y)[j] = u;
  AVEY_GRID_STRIDE(k, n - nvec * V) y[nvec * V + k] = v;
}

// A vector step loads kConvertVec elements as kVec<S>-element vectors of x and stores them as
// kVec<D>-element vectors of y.
template <class S, class D> __global__ void convert_kernel(int64_t n, int64_t nvec, const S* x, D* y) {
  if constexpr (kViaFloat<S, D>) {
    constexpr int V = kConvertVec<S, D>, VS = kVec<S>, VD = kVec<D>;
    AVEY_GRID_STRIDE(j, nvec) {
      float v[V];
#pragma unroll
      for (int k = 0; k < V; k += VS) load_vec(x, j * V + k, *reinterpret_cast<float(*)[VS]>(v + k));
#pragma unroll
      for (int k = 0; k < V; k += VD) store_vec(y, j * V + k, *reinterpret_cast<const float(*)[VD]>(v + k));
    }
    AVEY_GRID_STRIDE(k, n - nvec * V) store(y, nvec * V + k, load(x, nvec * V + k));
  } else {
    AVEY_GRID_STRIDE(i, n) y[i] = from_double<D>(to_double(x[i]));
  }
}

template <class T> void fill(int64_t n, T* y, double value) {
  if (n <= 0) return;
  T v;
  if constexpr (std::is_same_v<T, bf16>) v = to_bf16(float(value));
  else v = T(value);
  const int64_t nvec = aligned16(y) ? n / kVec<T> : 0;
  fill_kernel<<<blocks_for(nvec > 0 ? nvec : n), kThreads, 0, stream()>>>(n, nvec, y, v);
  AVEY_LAUNCH_CHECK("fill");
}

template <class S, class D> void convert(int64_t n, const S* x, D* y) {
  if (n <= 0) return;
  const int64_t nvec = kViaFloat<S, D> && aligned16(x) && aligned16(y) ? n / kConvertVec<S, D> : 0;
  convert_kernel<<<blocks_for(nvec > 0 ? nvec : n), kThreads, 0, stream()>>>(n, nvec, x, y);
  AVEY_LAUNCH_CHECK("convert");
}

// y += x in fp32 (a bf16 gradient into the fp32 gradient buffer).
template <class S, class D> __global__ void accumulate_kernel(int64_t n, const S* x, D* y) {
  AVEY_GRID_STRIDE(i, n) store(y, i, load(y, i) + load(x, i));
}

template <class S, class D> void accumulate(int64_t n, const S* x, D* y) {
  if (n <= 0) return;
  accumulate_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, x, y);
  AVEY_LAUNCH_CHECK("accumulate");
}
AVEY_INSTANTIATE2(accumulate, bf16, float)
AVEY_INSTANTIATE2(accumulate, float, float)

// accumulate_grads: up to kGradBatch slots a launch, passed by value (kernel parameters: no
// upload, no wait). The slots' elements are laid end to end in units of 4 (a slot's last unit may
// be short); unit u belongs to the slot s with start[s] <= u < start[s + 1], found by a binary
// search. A unit moves as 16-byte (fp32) and 8-byte (bf16) vectors when its slot's pointers are
// aligned and its 4 elements are all there, else one element at a time. Each element is written
// by one thread, its parts added in their order: the result does not depend on the schedule.
namespace {
constexpr int kGradBatch = 32;
struct GradBatch {
  int count = 0;
  int64_t start[kGradBatch + 1] = {};
  bool vec[kGradBatch] = {};
  GradSlot slot[kGradBatch];
};

__device__ __forceinline__ void load4(const void* p, bool is_bf16, int64_t i, float (&v)[4]) {
  if (is_bf16) {
    const uint2 u = *reinterpret_cast<const uint2*>(static_cast<const bf16*>(p) + i);
    v[0] = __uint_as_float(u.x << 16), v[1] = __uint_as_float(u.x & 0xffff0000u);
    v[2] = __uint_as_float(u.y << 16), v[3] = __uint_as_float(u.y & 0xffff0000u);
  } else {
    load_vec(static_cast<const float*>(p), i, v);
  }
}
__device__ __forceinline__ float load1(const void* p, bool is_bf16, int64_t i) {
  return is_bf16 ? load(static_cast<const bf16*>(p), i) : load(static_cast<const float*>(p), i);
}

__global__ void accumulate_grads_kernel(const __grid_constant__ GradBatch b) {
  AVEY_GRID_STRIDE(u, b.start[b.count]) {
    int lo = 0, hi = b.count - 1;  // the last slot whose start is <= u
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (b.start[mid] <= u) lo = mid;
      else hi = mid - 1;
    }
    const GradSlot& g = b.slot[lo];
    const int64_t i = (u - b.start[lo]) * 4;
    if (b.vec[lo]) {
      float v[4], x[4];
      for (int k = 0; k < g.parts; ++k) {
        load4(g.part[k], g.part_bf16[k], i, x);
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = k == 0 ? x[e] : v[e] + x[e];
      }
      if (!g.replace) {
        load_vec(g.dst, i, x);
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = x[e] + v[e];
      }
      store_vec(g.dst, i, v);
    } else {
      for (int64_t j = i; j < i + 4 && j < g.n; ++j) {
        float v = load1(g.part[0], g.part_bf16[0], j);
        for (int k = 1; k < g.parts; ++k) v += load1(g.part[k], g.part_bf16[k], j);
        g.dst[j] = g.replace ? v : g.dst[j] + v;
      }
    }
  }
}
}  // namespace

void accumulate_grads(int count, const GradSlot* slots) {
  for (int s = 0; s < count;) {
    GradBatch b;
    for (; s < count && b.count < kGradBatch; ++s) {
      const GradSlot& g = slots[s];
      if (g.n <= 0 || g.parts <= 0) continue;
      bool vec = g.n % 4 == 0 && aligned16(g.dst);
      for (int k = 0; k < g.parts; ++k)
        vec &= (reinterpret_cast<uintptr_t>(g.part[k]) & (g.part_bf16[k] ? 7u : 15u)) == 0;
      b.slot[b.count] = g;
      b.vec[b.count] = vec;
      b.start[b.count + 1] = b.start[b.count] + (g.n + 3) / 4;
      ++b.count;
    }
    if (b.count == 0) continue;
    accumulate_grads_kernel<<<blocks_for(b.start[b.count]), kThreads, 0, stream()>>>(b);
    AVEY_LAUNCH_CHECK("accumulate_grads");
  }
}

AVEY_INSTANTIATE_STORAGE(float)
AVEY_INSTANTIATE_STORAGE(double)
AVEY_INSTANTIATE_STORAGE(bf16)
AVEY_INSTANTIATE_STORAGE(int32_t)

// ---------------------------------------------------------------- timing marks

namespace {
struct Marks {
  std::vector<cudaEvent_t> events;
  size_t used = 0;
};
Marks& marks() {
  static Marks* m = new Marks;
  return *m;
}
}  // namespace

int mark() {
  Marks& m = marks();
  if (m.used == m.events.size()) {
    cudaEvent_t e;
    AVEY_CUDA_CHECK(cudaEventCreate(&e));
    m.events.push_back(e);
  }
  AVEY_CUDA_CHECK(cudaEventRecord(m.events[m.used], stream()));
  return int(m.used++);
}

double marks_ms(int a, int b) {
  Marks& m = marks();
  AVEY_CUDA_CHECK(cudaEventSynchronize(m.events[size_t(b)]));
  float ms = 0;
  AVEY_CUDA_CHECK(cudaEventElapsedTime(&ms, m.events[size_t(a)], m.events[size_t(b)]));
  return ms;
}

void clear_marks() { marks().used = 0; }

}  // namespace kernels::cuda
