// Config files in TOML (avey/config.h: a flat table of the config keys).
#include "avey/config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] { avey::load_config(fuzz::file(data, size, ".toml")).param_count(); });
}
