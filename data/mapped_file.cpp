// MappedFile: open, fstat, mmap (nothing to map for an empty file), close the descriptor.
#include "data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

namespace data {

MappedFile::Mapping::~Mapping() {
  if (bytes) ::munmap(const_cast<unsigned char*>(bytes), size);
}

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open shard file " + path);
  struct stat st{};
  auto map = std::make_shared<Mapping>();
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("cannot open shard file " + path);
  }
  map->size = uint64_t(st.st_size);
  if (map->size > 0) {
    void* p = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error("cannot map shard file " + path + " into memory");
    }
    map->bytes = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
  map_ = std::move(map);
}

}  // namespace data
