// A caching allocator for CPU tensors. A training step allocates the same sizes every time; the
// system allocator would hand large blocks back to the kernel and map fresh pages for the next
// step, paying a page fault per 4 KiB touched (a third of a large matmul's time, measured).
// Freed blocks are kept in per-size free lists and handed out again.
#pragma once
#include <cstddef>

namespace engine::cpu_allocator {

void* allocate(size_t nbytes);             // 64-byte aligned
void release(void* ptr, size_t nbytes);    // back to the free list of its size
void empty_cache();                        // return every cached block to the system
size_t cached_bytes();

}  // namespace engine::cpu_allocator
