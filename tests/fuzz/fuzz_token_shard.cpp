// Token shards (data/shard.h): 40-byte header, then uint16 or uint32 ids.
#include "data/shard.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] { data::read_shard(fuzz::file(data, size, ".bin")); });
}
