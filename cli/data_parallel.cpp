#include "cli/data_parallel.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "cli/args.h"
#include "cli/launch.h"
#include "data/masking.h"

DataParallel::DataParallel(engine::Device device)
    : comm_(engine::dist::connect(placement_from_launcher(), device)) {
  if (rank() > 0) {
    std::fflush(stdout);
    if (std::FILE* null = std::fopen("/dev/null", "w")) {
      dup2(fileno(null), STDOUT_FILENO);
      std::fclose(null);
    }
  }
}

void DataParallel::check_resume(const nlohmann::json& run, const std::string& dir) const {
  const int64_t started = run.value("world_size", int64_t(1));  // runs from before data parallelism: 1
  if (started != world())
    throw UsageError(fmt::format("avey train: the run in {} was started with {} process{}, this one has {}: resume it "
                                 "with the same number (its global batch and data position count them)",
                                 dir, started, started == 1 ? "" : "es", world()));
}

void DataParallel::share_weights(avey::Model& model) {
  comm_->broadcast(model.flat_params());
  model.refresh_working();
}

data::Batch DataParallel::next_batch(data::Loader& loader, engine::Rng& rng, const avey::Config& cfg) {
  data::Batch mine;
  for (int r = 0; r < world(); ++r) {
    if (r == rank()) mine = loader.next();
    else loader.skip();
  }
  if (cfg.is_encoder()) {  // masked language modelling: the window's own ids, 20% masked
    for (int r = 0; r < world(); ++r) {
      if (r != rank()) {
        data::mask_positions(mine.B * mine.T, rng);  // rank r's draw
        continue;
      }
      data::MaskedBatch m = data::mask_tokens(mine.inputs, int32_t(cfg.mask_id), rng);
      mine.inputs = std::move(m.input_ids), mine.targets = std::move(m.labels);
    }
  }
  return mine;
}

bool DataParallel::any(bool asked) { return comm_->all_reduce_sum({asked ? 1.0 : 0.0})[0] > 0; }

double DataParallel::average(engine::Tensor& grads, double loss) {
  comm_->all_reduce_mean(grads);
  return comm_->all_reduce_sum({loss})[0] / world();
}
