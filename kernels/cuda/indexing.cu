// Moving rows and columns: copy_cols, gather_rows, scatter_add_rows, scatter_cols, map_rows.
//
// map_rows: y[r] = the sum of rows x[src[k]], k in [ptr[r], ptr[r+1]), in that order and in fp32
// (one rounding), 16-byte vectors where the row length allows; the sums are fixed by the map, so
// no atomics are needed for the deterministic sums of shared padding rows' gradients.
//
// copy_cols, gather_rows: one thread per output element (grid-stride), so neighbouring threads
// touch neighbouring columns; gather_rows moves one 16-byte vector a thread where the row length
// and the pointers allow. scatter_cols: one thread per row (each row writes one element).
//
// scatter_add_rows (the embedding gradient) must add many rows into the same table row, and
// float atomics would make the sum depend on timing. Instead: sort the pairs (index, i) by
// index with CUB's radix sort, which is stable, so equal indices keep the order of i; then one
// block per run of equal indices, starting where the sorted index changes, adds its rows in
// that order (threads across columns) and adds the total to the table row once. Same input,
// same bits. Indices out of range are reported through the device error word (common.cuh) and
// added nowhere. The sort covers only the key bits that the table's row count needs.
#include <algorithm>

#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"
#include "kernels/instantiate.h"

namespace kernels::cuda {

template <class T>
__global__ void copy_cols_kernel(int64_t rows, int64_t width, const T* src, int64_t src_cols, int64_t src_off, T* dst,
                                 int64_t dst_cols, int64_t dst_off, bool accumulate) {
  AVEY_GRID_STRIDE(i, rows * width) {
    const int64_t r = i / width, c = i % width;
    const float v = load(src, r * src_cols + src_off + c);
    const int64_t j = r * dst_cols + dst_off + c;
    store(dst, j, accumulate ? load(dst, j) + v : v);
  }
}

template <class T>
void copy_cols(int64_t rows, int64_t width, const T* src, int64_t src_cols, int64_t src_off, T* dst, int64_t dst_cols,
               int64_t dst_off, bool accumulate) {
  if (rows * width <= 0) return;
  copy_cols_kernel<<<blocks_for(rows * width), kThreads, 0, stream()>>>(rows, width, src, src_cols, src_off, dst,
                                                                       dst_cols, dst_off, accumulate);
  AVEY_LAUNCH_CHECK("copy_cols");
}

// A bad index writes NaN to its row (so nothing unwritten is left) and raises the error word.
template <class T>
__global__ void gather_rows_kernel(int64_t n_idx, int64_t cols, const T* table, int64_t table_rows, const int32_t* idx,
                                   T* y, unsigned* error) {
  AVEY_GRID_STRIDE(i, n_idx * cols) {
    const int64_t r = i / cols, c = i % cols;
    const int64_t t = idx[r];
    if (t < 0 || t >= table_rows) {
      store(y, i, NAN);
      if (c == 0) atomicOr(error, unsigned(BadGatherIndex));
    } else {
      store(y, i, load(table, t * cols + c));
    }
  }
}

// Vectorised (rows whole 16-byte vectors): thread j copies y's vector j, vector j % cvec of row
// j / cvec, from the table bit for bit; a bad index as above. 32-bit indices (the host routes
// larger outputs to the kernel above).
template <class T>
__global__ void gather_rows_vec_kernel(uint32_t nvec, uint32_t cvec, const T* table, int64_t table_rows,
                                       const int32_t* idx, T* y, unsigned* error) {
  constexpr int V = kVec<T>;
  for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < nvec; j += gridDim.x * blockDim.x) {
    const uint32_t r = j / cvec, c = j - r * cvec;
    const int64_t t = idx[r];
    if (t < 0 || t >= table_rows) {
      float v[V];
#pragma unroll
      for (int k = 0; k < V; ++k) v[k] = NAN;
      store_vec(y, int64_t(j) * V, v);
      if (c == 0) atomicOr(error, unsigned(BadGatherIndex));
    } else {
      reinterpret_cast<uint4*>(y)[j] = reinterpret_cast<const uint4*>(table)[t * cvec + c];
    }
  }
}

template <class T>
void gather_rows(int64_t n_idx, int64_t cols, const T* table, int64_t table_rows, const int32_t* idx, T* y) {
  if (n_idx * cols <= 0) return;
  const int64_t nvec = n_idx * cols / kVec<T>;
  if (cols % kVec<T> == 0 && nvec <= int64_t(UINT32_MAX) / 2 && aligned16(table) && aligned16(y))
    gather_rows_vec_kernel<<<blocks_for(nvec), kThreads, 0, stream()>>>(
        uint32_t(nvec), uint32_t(cols / kVec<T>), table, table_rows, idx, y, device_error_word());
  else
    gather_rows_kernel<<<blocks_for(n_idx * cols), kThreads, 0, stream()>>>(n_idx, cols, table, table_rows, idx, y,
                                                                           device_error_word());
  AVEY_LAUNCH_CHECK("gather_rows");
}

// The sort's input: key i is idx[i], or table_rows for an index outside [0, table_rows) (reported
// here, then skipped by the segments); value i is i.
__global__ void scatter_keys_kernel(int64_t n, const int32_t* idx, int32_t table_rows, int32_t* keys, int32_t* order,
                                    unsigned* error) {
  AVEY_GRID_STRIDE(i, n) {
    const int32_t key = idx[i];
    const bool ok = key >= 0 && key < table_rows;
    if (!ok) atomicOr(error, unsigned(BadScatterIndex));
    keys[i] = ok ? key : table_rows;
    order[i] = int32_t(i);
  }
}

// Block p handles the run of equal sorted keys that starts at p (other blocks, and the run of bad
// indices, exit at once). Its threads take W columns each (one 16-byte vector, or one element),
// add the run's rows in order in fp32, and add the sum to the table row.
template <int W, class T>
__global__ void segment_add_kernel(int64_t n, int64_t cols, const T* g, const int32_t* keys, const int32_t* order,
                                   int32_t bad_key, T* gtable) {
  const int64_t p = blockIdx.x;
  const int32_t key = keys[p];
  if ((p > 0 && keys[p - 1] == key) || key == bad_key) return;
  int64_t end = p + 1;
  while (end < n && keys[end] == key) ++end;
  for (int64_t c = int64_t(threadIdx.x) * W; c < cols; c += int64_t(blockDim.x) * W) {
    float s[W] = {}, v[W];
    for (int64_t q = p; q < end; ++q) {
      load_n<W>(g, int64_t(order[q]) * cols + c, v);
#pragma unroll
      for (int e = 0; e < W; ++e) s[e] += v[e];
    }
    load_n<W>(gtable, int64_t(key) * cols + c, v);
#pragma unroll
    for (int e = 0; e < W; ++e) v[e] += s[e];
    store_n<W>(gtable, int64_t(key) * cols + c, v);
  }
}

template <class T>
void scatter_add_rows(int64_t n_idx, int64_t cols, const T* g, const int32_t* idx, T* gtable, int64_t table_rows) {
  if (n_idx <= 0 || cols <= 0) return;
  if (n_idx > INT32_MAX) fail("scatter_add_rows", "more than 2^31 indices", __FILE__, __LINE__);
  if (table_rows >= INT32_MAX) fail("scatter_add_rows", "2^31 - 1 or more table rows", __FILE__, __LINE__);
  const int n = int(n_idx);
  // The radix sort needs only the bits that hold 0..table_rows (the bad key): 16 for a vocabulary
  // of 50304, two passes of CUB's onesweep instead of four.
  int end_bit = 1;
  while ((int64_t(1) << end_bit) <= table_rows) ++end_bit;
  Scratch keys_in(n * sizeof(int32_t)), keys(n * sizeof(int32_t)), order_in(n * sizeof(int32_t)),
      order(n * sizeof(int32_t));
  scatter_keys_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, idx, int32_t(table_rows), keys_in.as<int32_t>(),
                                                                order_in.as<int32_t>(), device_error_word());
  AVEY_LAUNCH_CHECK("scatter_add_rows (keys)");
  size_t temp_bytes = 0;
  AVEY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in.as<int32_t>(), keys.as<int32_t>(),
                                                  order_in.as<int32_t>(), order.as<int32_t>(), n, 0, end_bit,
                                                  stream()));
  Scratch temp(temp_bytes);
  AVEY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.ptr, temp_bytes, keys_in.as<int32_t>(), keys.as<int32_t>(),
                                                  order_in.as<int32_t>(), order.as<int32_t>(), n, 0, end_bit,
                                                  stream()));
  constexpr int V = kVec<T>;
  if (cols % V == 0 && aligned16(g) && aligned16(gtable))
    segment_add_kernel<V><<<unsigned(n), std::min(threads_for_row(cols / V * 4), kThreads), 0, stream()>>>(
        n, cols, g, keys.as<int32_t>(), order.as<int32_t>(), int32_t(table_rows), gtable);
  else
    segment_add_kernel<1><<<unsigned(n), std::min(threads_for_row(cols), kThreads), 0, stream()>>>(
        n, cols, g, keys.as<int32_t>(), order.as<int32_t>(), int32_t(table_rows), gtable);
  AVEY_LAUNCH_CHECK("scatter_add_rows");
}

template <class T>
__global__ void scatter_cols_kernel(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx) {
  AVEY_GRID_STRIDE(r, rows) {
    const int64_t j = r * cols + idx[r];
    store(gx, j, load(gx, j) + load(gy, r));
  }
}

template <class T> void scatter_cols(int64_t rows, int64_t cols, const int32_t* idx, const T* gy, T* gx) {
  if (rows <= 0) return;
  scatter_cols_kernel<<<blocks_for(rows), kThreads, 0, stream()>>>(rows, cols, idx, gy, gx);
  AVEY_LAUNCH_CHECK("scatter_cols");
}

template <class T>
__global__ void map_rows_kernel(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x,
                                T* y) {
  AVEY_GRID_STRIDE(i, out_rows * cols) {
    const int64_t r = i / cols, c = i % cols;
    float s = 0.f;
    for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) s += load(x, int64_t(src[k]) * cols + c);
    store(y, i, s);
  }
}

template <class T>
__global__ void map_rows_vec_kernel(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x,
                                    T* y) {
  constexpr int V = kVec<T>;
  const int64_t chunks = cols / V;
  AVEY_GRID_STRIDE(i, out_rows * chunks) {
    const int64_t r = i / chunks, c = (i % chunks) * V;
    float s[V] = {}, v[V];
    for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      load_vec(x, int64_t(src[k]) * cols + c, v);
#pragma unroll
      for (int e = 0; e < V; ++e) s[e] += v[e];
    }
    store_vec(y, r * cols + c, s);
  }
}

template <class T>
void map_rows(int64_t out_rows, int64_t cols, const int32_t* ptr, const int32_t* src, const T* x, T* y) {
  if (out_rows * cols <= 0) return;
  if (cols % kVec<T> == 0 && aligned16(x) && aligned16(y)) {
    const int64_t n = out_rows * (cols / kVec<T>);
    map_rows_vec_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out_rows, cols, ptr, src, x, y);
  } else {
    map_rows_kernel<<<blocks_for(out_rows * cols), kThreads, 0, stream()>>>(out_rows, cols, ptr, src, x, y);
  }
  AVEY_LAUNCH_CHECK("map_rows");
}

AVEY_INSTANTIATE_CUDA(copy_cols)
AVEY_INSTANTIATE_CUDA(gather_rows)
AVEY_INSTANTIATE_CUDA(scatter_add_rows)
AVEY_INSTANTIATE_CUDA(scatter_cols)
AVEY_INSTANTIATE_CUDA(map_rows)

}  // namespace kernels::cuda
