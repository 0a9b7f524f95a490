// `avey logits`: the model's logits for a batch of token ids, written as safetensors (for
// comparing the engine with another implementation: tests/reference/check_hf_export.py).
#include <fmt/format.h>

#include "avey/batch_file.h"
#include "cli/args.h"
#include "cli/command.h"
#include "cli/model_folder.h"
#include "cli/run_data.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"

namespace {

int run_logits(int argc, char** argv) {
  Args args("logits", "Write the logits of a batch of token ids to a safetensors file.");
  args.option("checkpoint", "DIR", kCheckpointHelp, "runs/tiny");
  args.option("batch", "FILE", "JSON {\"input_ids\": [[...]], \"labels\": [[...]]} (the labels are not read)");
  args.option("out", "FILE", "safetensors file: \"logits\" f32 [B, T, V]");
  args.option("device", "cpu|cuda|auto", "where to run", "cpu");
  args.option("dtype", "f32|f64", "computation dtype (f64: CPU only)", "f32");
  if (!args.parse(argc, argv)) return 0;
  for (const char* k : {"batch", "out"})
    if (!args.given(k)) throw UsageError(fmt::format("avey logits: --{} is required", k));
  const std::string dt = args.str("dtype");
  if (dt != "f32" && dt != "f64") throw UsageError("avey logits: --dtype must be f32 or f64");

  const avey::TokenBatch batch = avey::read_batch_json(args.str("batch"));
  const ModelFolder folder = open_model_folder(args.str("checkpoint"));
  auto model = load_model(folder, resolve_device(args.str("device")), dt == "f32" ? engine::DType::F32 : engine::DType::F64);
  engine::NoGrad no_grad;
  const engine::Tensor logits = model->logits(batch.input_ids).to(engine::Device::CPU).to(engine::DType::F32);
  engine::save_safetensors(args.str("out"), {{"logits", logits}}, {{"format", "pt"}});
  fmt::print("wrote {}: logits {}\n", args.str("out"), engine::to_string(logits.shape()));
  return 0;
}

const RegisterCommand reg{{"logits", "write the logits of a batch to a safetensors file", run_logits}};

}  // namespace
