// Explicit instantiation of a kernel template without writing its signature again: the
// declaration in the kernel list is the only place it is spelled out.
//   AVEY_INSTANTIATE(fill, float)            // template void fill<float>(int64_t, float*, double);
//   AVEY_INSTANTIATE2(convert, float, bf16)  // template void convert<float, bf16>(...);
#pragma once

#define AVEY_INSTANTIATE(fn, T) template decltype(fn<T>) fn<T>;
#define AVEY_INSTANTIATE2(fn, S, D) template decltype(fn<S, D>) fn<S, D>;
// The CPU's two element types (double for the gradient checks) and the GPU's.
#define AVEY_INSTANTIATE_CPU(fn) AVEY_INSTANTIATE(fn, float) AVEY_INSTANTIATE(fn, double)
#define AVEY_INSTANTIATE_CUDA(fn) AVEY_INSTANTIATE(fn, float) AVEY_INSTANTIATE(fn, bf16)
// fill and convert from S to every storage type, for every S (engine/tensor.cpp uses them for
// all dtypes): AVEY_INSTANTIATE_STORAGE(float) AVEY_INSTANTIATE_STORAGE(double) ...
#define AVEY_INSTANTIATE_STORAGE(S)                                                                     \
  AVEY_INSTANTIATE(fill, S)                                                                              \
  AVEY_INSTANTIATE2(convert, S, float)                                                                   \
  AVEY_INSTANTIATE2(convert, S, double) AVEY_INSTANTIATE2(convert, S, bf16) AVEY_INSTANTIATE2(convert, S, int32_t)
