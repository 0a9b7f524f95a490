// Device memory for the CUDA backend: a caching allocator (freed blocks are kept, by size, for
// the next allocation of that size, so a training step allocates nothing new after the first),
// copies between host and device, and synchronisation. All work runs on one stream.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kernels::cuda {

bool available();                  // a CUDA device is present and usable
std::string device_name();         // the GPU's name (cudaGetDeviceProperties)
void* allocate(size_t nbytes);     // from the cache, else cudaMalloc; throws on failure
void release(void* ptr, size_t nbytes);  // back to the cache
void empty_cache();                // cudaFree every cached block
size_t bytes_in_use();             // live allocations
size_t peak_bytes_in_use();        // high-water mark since the last reset
void reset_peak();
// Tests: while on, every allocation is filled with 0xFF bytes (NaN in f32 and bf16), so an
// output element that a kernel fails to write shows up as NaN.
void poison_allocations(bool on);
void copy_to_device(void* dst, const void* src, size_t nbytes);
void copy_to_host(void* dst, const void* src, size_t nbytes);
void copy_on_device(void* dst, const void* src, size_t nbytes);
void zero(void* dst, size_t nbytes);
void synchronize();                // waits for all queued GPU work; throws on a kernel error
// Timing marks on the stream (engine/profile.h's unsynchronised mode): mark() records an event
// now and returns its number; marks_ms(a, b) waits for b and gives the GPU time between them;
// clear_marks() lets the numbers start again (the events are reused).
int mark();
double marks_ms(int a, int b);
void clear_marks();

}  // namespace kernels::cuda
