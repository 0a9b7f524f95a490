#include "engine/cpu_allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace engine::cpu_allocator {

namespace {
struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  size_t bytes = 0;
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}
size_t rounded(size_t nbytes) { return (nbytes + 63) / 64 * 64; }
}  // namespace

void* allocate(size_t nbytes) {
  const size_t size = rounded(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.bytes -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) {
    empty_cache();  // one retry with the cache handed back
    p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void release(void* ptr, size_t nbytes) {
  const size_t size = rounded(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks[size].push_back(ptr);
  c.bytes += size;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.bytes = 0;
}

size_t cached_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

}  // namespace engine::cpu_allocator
