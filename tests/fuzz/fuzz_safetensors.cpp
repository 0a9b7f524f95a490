// safetensors files (engine/safetensors.h): header length, JSON header, data.
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] {
    std::map<std::string, std::string> metadata;
    engine::parse_safetensors(fuzz::text(data, size), "fuzz", &metadata);
  });
}
