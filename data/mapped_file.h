// A shard file mapped read-only into memory (mmap): the kernel reads pages in when they are touched and
// may drop them again under memory pressure, so a corpus larger than RAM can be read at random
// places. Copies share one mapping, unmapped when the last copy goes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace data {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws "cannot open <what> <path>"

  const unsigned char* data() const { return map_ ? map_->bytes : nullptr; }
  uint64_t size() const { return map_ ? map_->size : 0; }

 private:
  struct Mapping {
    const unsigned char* bytes = nullptr;
    uint64_t size = 0;
    ~Mapping();
  };
  std::shared_ptr<const Mapping> map_;
};

}  // namespace data
