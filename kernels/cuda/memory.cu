// Device memory: the stream, the caching allocator, copies, synchronisation, error reporting,
// and the two kernels every dtype needs (fill, convert).
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
  if (err & BadScatterIndex) what += " scatter_add_rows: an index is negative;";
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

// ---------------------------------------------------------------- fill and convert (one thread per element)

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
}  // namespace

template <class T> __global__ void fill_kernel(int64_t n, T* y, T v) {
  AVEY_GRID_STRIDE(i, n) y[i] = v;
}

template <class S, class D> __global__ void convert_kernel(int64_t n, const S* x, D* y) {
  AVEY_GRID_STRIDE(i, n) {
    if constexpr ((std::is_same_v<S, float> || std::is_same_v<S, bf16>) && !std::is_same_v<D, double> &&
                  !std::is_same_v<D, int32_t>) {
      store(y, i, load(x, i));  // float <-> bf16 in fp32
    } else {
      y[i] = from_double<D>(to_double(x[i]));
    }
  }
}

template <class T> void fill(int64_t n, T* y, double value) {
  if (n <= 0) return;
  T v;
  if constexpr (std::is_same_v<T, bf16>) v = to_bf16(float(value));
  else v = T(value);
  fill_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, y, v);
  AVEY_LAUNCH_CHECK("fill");
}

template <class S, class D> void convert(int64_t n, const S* x, D* y) {
  if (n <= 0) return;
  convert_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, x, y);
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
template void accumulate<bf16, float>(int64_t, const bf16*, float*);
template void accumulate<float, float>(int64_t, const float*, float*);

#define FOR_ALL(S)                                                \
  template void fill<S>(int64_t, S*, double);                     \
  template void convert<S, float>(int64_t, const S*, float*);     \
  template void convert<S, double>(int64_t, const S*, double*);   \
  template void convert<S, bf16>(int64_t, const S*, bf16*);       \
  template void convert<S, int32_t>(int64_t, const S*, int32_t*);
FOR_ALL(float)
FOR_ALL(double)
FOR_ALL(bf16)
FOR_ALL(int32_t)
#undef FOR_ALL

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
