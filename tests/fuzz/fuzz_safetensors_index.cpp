// save_pretrained's shard index, model.safetensors.index.json (engine/safetensors.h).
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] { engine::parse_safetensors_index(fuzz::text(data, size), "fuzz"); });
}
