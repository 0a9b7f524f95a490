// A checkpoint's train_state.json (cli/checkpoint.h), and the generator state it carries.
#include "cli/checkpoint.h"
#include "engine/random.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] {
    const TrainState st = parse_train_state(fuzz::text(data, size), "fuzz");
    engine::Rng().set_state(st.rng);
  });
}
