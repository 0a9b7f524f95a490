// avey train as one of the processes of a data-parallel run (docs/distributed.md).
//
// Every rank runs the same program: the same settings, the same model and optimizer, the same
// loader and random generator, in the same state. Only rank 0 writes (run folder, checkpoints,
// logs, samples) and prints; the others' standard output goes to /dev/null.
//
// The data: a step's global batch is grad_accum x world micro-batches of B x T. At each
// micro-step the ranks take the loader's next `world` batches, rank r the r-th, and an encoder's
// masks are drawn for all of them in that order, each rank keeping its own. So the run sees the
// batches, masks and random draws of one process with grad_accum x world micro-batches, and the
// loader and generator hold the same (global) state on every rank: rank 0's checkpoint resumes
// them all. The gradients are averaged over the ranks before the clip, so every rank's AdamW
// takes the same step, and the weights stay the same everywhere.
//
// Hence (tests/test_dist.cpp, tests/test_cli_dist.cpp): W ranks x B == one process with
// --grad-accum W x B: the same batches, and on the CPU for W a power of 2 the same gradients to
// the bit, so the same run; and within an epoch, == one process with batch W B (the same
// windows; the gradient differs only by the order of its floating-point sums).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "avey/model.h"
#include "data/loader.h"
#include "engine/dist/communicator.h"
#include "engine/random.h"

class DataParallel {
 public:
  // World 1 unless a launcher started this process (cli/launch.h): then the ranks meet
  // (engine/dist/rendezvous.h; NCCL takes the GPU numbered LOCAL_RANK).
  explicit DataParallel(engine::Device device);

  int rank() const { return comm_->rank(); }
  int world() const { return comm_->world(); }

  // Throws one line when run.json's "world_size" (written when the run started) is not world().
  void check_resume(const nlohmann::json& run, const std::string& dir) const;

  // Every rank starts from rank 0's weights (DDP's rule; they built the same ones anyway).
  void share_weights(avey::Model& model);
  // This rank's micro-batch: see above. An encoder's is masked (data/masking.h).
  data::Batch next_batch(data::Loader& loader, engine::Rng& rng, const avey::Config& cfg);
  // Whether any rank was asked to stop (cli/stop_signal.h): all stop after the same step.
  bool any(bool asked);
  // The gradients averaged over the ranks, in place; returns the mean of the ranks' losses.
  double average(engine::Tensor& grads, double loss);

 private:
  std::unique_ptr<engine::dist::Communicator> comm_;
};
