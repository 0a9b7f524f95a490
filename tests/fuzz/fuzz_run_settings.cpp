// A run's settings as run.json keeps them (cli/train_settings.h), read back by --resume.
#include "cli/json_fields.h"
#include "cli/train_settings.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::accept_errors([&] {
    Args args("train", "");
    TrainSettings::declare(args);
    char name[] = "train";
    char* argv[] = {name};
    args.parse(1, argv);
    TrainSettings::resumed(parse_json_object(fuzz::text(data, size), "fuzz"), args, "fuzz");
  });
}
