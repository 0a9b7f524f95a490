// data_dir(): the environment rule shared with scripts/fetch-data.
#include "data/data_dir.h"

#include <cstdlib>
#include <stdexcept>

namespace data {

std::string data_dir() {
  if (const char* dir = std::getenv("AVEY_DATA_DIR"); dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  if (!home || !*home) throw std::runtime_error("cannot find the data directory: neither AVEY_DATA_DIR nor HOME is set");
  return std::string(home) + "/.cache/avey";
}

}  // namespace data
