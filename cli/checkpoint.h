// One checkpoint of a training run: a step folder (run_folder.h), written whole or not at all.
//   config.json        the model's config (engine keys)
//   model.safetensors  the weights under the PyTorch reference's names; metadata step, tokenizer
//   optimizer.bin      AdamW's moments and step (optim/adamw.h)
//   train_state.json   written last: {"step", "tokenizer", "rng", "loader": {"epoch", "cursor"},
//                      "best": {"step", "val_loss"} (once a validation loss is known),
//                      "files": {name: {"bytes", "checksum"}} for the three files above}
//
// save_checkpoint refuses non-finite weights or moments before writing anything, writes every
// file into a temporary folder (each fsync'ed), then renames the folder into place and fsyncs
// its parent (engine::commit_folder): a crash at any moment leaves either no folder or a whole one.
// load_checkpoint accepts a folder only when each file has the size and checksum train_state.json
// recorded, and the weights, the optimizer and the state all name the folder's step.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "avey/model.h"
#include "data/loader.h"
#include "engine/checksum.h"
#include "optim/adamw.h"

struct TrainState {
  int64_t step = 0;  // optimizer steps completed
  std::string tokenizer = "p50k";
  std::string rng;   // engine::Rng::state()
  data::Loader::State loader;
  struct Best {
    int64_t step;
    double val_loss;
  };
  std::optional<Best> best;  // the checkpoint of lowest validation loss so far (of those evaluated)
  std::map<std::string, engine::FileDigest> files;  // filled by save_checkpoint
};

std::string step_folder_name(int64_t step);                    // "step-00000120"
std::optional<int64_t> step_of_folder(const std::string& name);  // the step a folder name holds, if it is one

// Writes run_dir/step-<step> and returns that folder's name. No pointer (run_folder.h) may name
// that folder: one already there is an interrupted save's and is replaced.
std::string save_checkpoint(const std::string& run_dir, const avey::Model& model, const optim::AdamW& opt,
                            TrainState st);

// train_state.json's text (`what` names it in errors); every field is checked.
TrainState parse_train_state(const std::string& text, const std::string& what);
TrainState read_train_state(const std::string& step_dir);

// Checks that the files named match the digests train_state.json recorded for them.
void verify_files(const std::string& step_dir, const TrainState& st, const std::vector<std::string>& names);

// Reads a step folder's weights into `model` after checking config.json and model.safetensors
// against `st` and the weights' step. (A train_state.json of an older avey, from before step
// folders, records no digests: its weights are checked for their step only.)
void load_checkpoint_weights(const std::string& step_dir, const TrainState& st, avey::Model& model);
// Reads a step folder's weights into `model` and moments into `opt` after every check above.
TrainState load_checkpoint(const std::string& step_dir, avey::Model& model, optim::AdamW& opt);

// model.load_state(tensors), its errors prefixed with `what` (the file they came from).
void load_weights_into(avey::Model& model, const std::map<std::string, engine::Tensor>& tensors, const std::string& what);
