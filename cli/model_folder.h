// The folder a command takes with --checkpoint (and avey train --init-from), of any of three kinds:
//   a run folder (avey train --out)   its newest checkpoint: the step folder `latest` names
//                                     (run_folder.h)
//   a step folder (run/step-00000120) config.json (engine keys) and model.safetensors, checked
//                                     against the sizes and checksums of its train_state.json
//                                     (checkpoint.h)
//   a reference folder                what PyTorch's save_pretrained (or avey export --to hf)
//                                     writes: config.json with "model_type" (model_config.h) and
//                                     model.safetensors, or model.safetensors.index.json + shards
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "avey/model.h"
#include "cli/checkpoint.h"
#include "cli/model_config.h"

// The help text of every --checkpoint flag.
inline constexpr const char* kCheckpointHelp = "run folder, checkpoint folder or reference (save_pretrained) folder";

struct ModelFolder {
  std::string dir;   // the folder the weights are read from
  ModelSpec spec;    // model type, config and tokenizer ("p50k", the reference's, when it does not say)
  int64_t step = 0;  // training steps behind the weights (0 when the folder does not say)
  std::optional<TrainState> state;  // a step folder's train_state.json
};

// Reads the folder's config (and state): one clear error naming the file for anything amiss.
ModelFolder open_model_folder(const std::string& path);
// Reads the weights into a model built from folder.spec.config.
void load_weights(const ModelFolder& folder, avey::Model& model);
// Writes `out` as the reference's save_pretrained does: config.json (`config`: to_reference_config's,
// maybe with more keys) and model.safetensors (float32, the model's names, {"format": "pt"}),
// written whole into a temporary folder beside `out` and moved into place (an existing `out` is
// replaced only then).
void write_reference_folder(const std::string& out, const nlohmann::ordered_json& config, const avey::Model& model);
// A model of the folder's config on `device` computing in `dtype`, with the folder's weights.
std::unique_ptr<avey::Model> load_model(const ModelFolder& folder, engine::Device device, engine::DType dtype);
