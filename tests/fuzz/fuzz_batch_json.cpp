// Token batches as JSON (avey/batch_file.h), as avey grads and avey logits read them.
#include "avey/batch_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] { avey::read_batch_json(fuzz::file(data, size, ".json")); });
}
