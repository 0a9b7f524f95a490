// `avey export --to hf`: a model folder the PyTorch ecosystem reads, as the reference's
// save_pretrained writes it: config.json with the reference's keys and model_type (model_config.h:
// the decoder "avey" or the encoder "avey-b"), and model.safetensors (float32, the reference's
// tensor names, metadata {"format": "pt"}), loadable with the reference's from_pretrained.
#include <fmt/format.h>

#include <filesystem>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/model_folder.h"

namespace fs = std::filesystem;

namespace {

int run_export(int argc, char** argv) {
  Args args("export", "Write a model as a folder the PyTorch reference's from_pretrained reads.");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("to", "FORMAT", "hf: config.json + model.safetensors, as save_pretrained writes them", "hf");
  args.option("out", "DIR", "the folder to write (new, or empty)");
  if (!args.parse(argc, argv)) return 0;
  if (args.str("to") != "hf") throw UsageError("avey export: --to must be hf, got '" + args.str("to") + "'");
  if (!args.given("out")) throw UsageError("avey export: --out is required");
  fs::path out_path = fs::path(args.str("out")).lexically_normal();
  if (!out_path.has_filename()) out_path = out_path.parent_path();  // "dir/" names dir
  const std::string out = out_path.string();
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out)))
    throw UsageError("avey export: " + out + " already exists and is not an empty folder");

  const ModelFolder folder = open_model_folder(args.str("checkpoint"));
  const nlohmann::ordered_json config = to_reference_config(folder.spec);
  auto model = load_model(folder, engine::Device::CPU, engine::DType::F32);
  write_reference_folder(out, config, *model);
  fmt::print("wrote {} (model_type {}, {} parameters, from {})\n", out, folder.spec.config.model, model->num_params(),
             folder.dir);
  return 0;
}

const RegisterCommand reg{{"export", "write a model folder the PyTorch reference reads", run_export}};

}  // namespace
