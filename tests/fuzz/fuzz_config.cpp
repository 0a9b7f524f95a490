// config.json in either format (cli/model_config.h): the engine's keys, or the reference's with
// its model_type; a config that reads is also written back in the reference's format.
#include "cli/model_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] {
    const ModelSpec spec = parse_model_config(fuzz::text(data, size), "fuzz");
    spec.config.param_count();
    to_reference_config(spec);
  });
}
