// avey score's task files (cli/score_tasks.h): JSON lines of questions.
#include "cli/score_tasks.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] { parse_questions(fuzz::text(data, size), "fuzz"); });
}
