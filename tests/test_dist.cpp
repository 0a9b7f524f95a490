// engine/dist: the launchers' variables, the rendezvous on loopback, the TCP backend's
// collectives, and data parallelism's promise: W ranks with B/W rows each take the step one
// process takes with B rows. The ranks here are threads of this process, each with its own
// sockets on 127.0.0.1: the same code and the same wire as ranks in separate processes
// (tests/test_cli_dist.cpp runs those).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "avey/model.h"
#include "engine/dist/communicator.h"
#include "engine/dist/rendezvous.h"
#include "engine/ops.h"
#include "engine/random.h"

using namespace engine;
using engine::dist::Placement;

namespace {

// placement_from over a map of variables.
Placement place(const std::map<std::string, std::string>& vars) {
  return dist::placement_from([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string placement_error(const std::map<std::string, std::string>& vars) {
  try {
    place(vars);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// Runs body(placement) for ranks 0 .. world - 1, each on its own thread, meeting on a free port
// of 127.0.0.1; returns each rank's error ("" when it finished).
std::vector<std::string> run_ranks(int world, const std::function<void(const Placement&)>& body, double timeout_s = 20) {
  const int port = dist::free_port("127.0.0.1");
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      Placement p;
      p.launched = true, p.rank = r, p.world = world, p.local_rank = r, p.master_port = port, p.timeout_s = timeout_s;
      try {
        body(p);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

void check_all_finished(const std::vector<std::string>& errors) {
  for (size_t r = 0; r < errors.size(); ++r) CHECK_MESSAGE(errors[r].empty(), "rank ", r, ": ", errors[r]);
}

}  // namespace

TEST_CASE("dist: the placement comes from torchrun's, mpirun's or srun's variables, world 1 without them") {
  Placement p = place({});
  CHECK((!p.launched && p.rank == 0 && p.world == 1 && p.master_addr == "127.0.0.1" && p.master_port == 29500));

  p = place({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
             {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "1234"}});
  CHECK((p.launched && p.rank == 3 && p.world == 8 && p.local_rank == 1 && p.local_world == 2));
  CHECK((p.master_addr == "node0" && p.master_port == 1234));

  p = place({{"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_SIZE", "6"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
             {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}});
  CHECK((p.rank == 5 && p.world == 6 && p.local_rank == 1 && p.local_world == 4));

  p = place({{"SLURM_PROCID", "2"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_LOCALID", "0"}});
  CHECK((p.rank == 2 && p.world == 4 && p.local_rank == 0));
  // A batch script (not srun's task) has SLURM_PROCID and SLURM_NTASKS, and is one process.
  p = place({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}});
  CHECK((!p.launched && p.world == 1));
  // torchrun's variables win over those of an mpirun or srun around it.
  p = place({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "7"}, {"SLURM_STEP_NUM_TASKS", "8"}});
  CHECK((p.rank == 1 && p.world == 2));
}

TEST_CASE("dist: a placement that cannot be is one line naming the variable") {
  CHECK(placement_error({{"RANK", "0"}}) == "RANK is set but not WORLD_SIZE: a launcher sets both");
  CHECK(placement_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}) == "RANK='2' is not an integer in [0, 1] (WORLD_SIZE is 2)");
  CHECK(placement_error({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).rfind("RANK='x' is not an integer", 0) == 0);
  CHECK(placement_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}})
            .rfind("LOCAL_RANK='2'", 0) == 0);
  CHECK(placement_error({{"MASTER_PORT", "70000"}}).rfind("MASTER_PORT='70000'", 0) == 0);
  CHECK(placement_error({{"MASTER_ADDR", ""}}) == "MASTER_ADDR is set but empty");
}

TEST_CASE("dist: the rendezvous on loopback hands rank 0's payload to every rank and keeps their links") {
  const std::string id(128, '\x7f');  // NCCL's unique id is 128 bytes
  std::vector<std::string> got(3);
  check_all_finished(run_ranks(3, [&](const Placement& p) {
    dist::Rendezvous rdv(p, p.rank == 0 ? id : "");
    got[size_t(p.rank)] = rdv.payload();
    for (int r = 0; r < 3; ++r) CHECK(rdv.links()[size_t(r)].connected() == (p.rank == 0 ? r > 0 : r == 0));
  }));
  for (const std::string& g : got) CHECK(g == id);
}

TEST_CASE("dist: the rendezvous refuses ranks that disagree, and names those that never came") {
  // rank 1 says the world is 3, rank 0 that it is 2
  const int port = dist::free_port("127.0.0.1");
  std::string error0, error1;
  std::thread host([&] {
    Placement p;
    p.world = 2, p.master_port = port, p.timeout_s = 20;
    try {
      dist::Rendezvous rdv(p);
    } catch (const std::exception& e) {
      error0 = e.what();
    }
  });
  Placement p;
  p.rank = 1, p.world = 3, p.master_port = port, p.timeout_s = 20;
  try {
    dist::Rendezvous rdv(p);
  } catch (const std::exception& e) {
    error1 = e.what();
  }
  host.join();
  CHECK(error0 == "rank 1 has a world of 3, rank 0 of 2: every rank needs the same world size");
  CHECK(error1 == "rank 0 refused this rank: " + error0);

  // ranks 1 and 2 of 3 never start: rank 0 waits its timeout, then says which
  const std::vector<std::string> errors = run_ranks(1, [](const Placement& solo) {
    Placement p = solo;
    p.world = 3, p.timeout_s = 1;
    dist::Rendezvous rdv(p);
  });
  CHECK(errors[0].find("waited 1 s") != std::string::npos);
  CHECK(errors[0].find("for ranks 1, 2 of 3 (AVEY_DIST_TIMEOUT)") != std::string::npos);
}

TEST_CASE("dist: the TCP backend's mean, sum, broadcast and barrier") {
  const int world = 3;
  std::vector<std::vector<float>> mean(world), broadcast(world);
  std::vector<std::vector<double>> sum(world);
  check_all_finished(run_ranks(world, [&](const Placement& p) {
    auto comm = dist::connect(p, Device::CPU);
    REQUIRE((comm->rank() == p.rank && comm->world() == world));
    const float r = float(p.rank);
    Tensor t = Tensor::from(std::vector<float>{r, 10 * r, -r}, {3});
    comm->all_reduce_mean(t);
    mean[size_t(p.rank)] = t.to_vector<float>();
    sum[size_t(p.rank)] = comm->all_reduce_sum({double(p.rank), 1.0});
    Tensor b = Tensor::from(std::vector<float>{r + 1, r + 2}, {2});
    comm->broadcast(b);
    broadcast[size_t(p.rank)] = b.to_vector<float>();
    comm->barrier();
  }));
  for (int r = 0; r < world; ++r) {
    CHECK(mean[size_t(r)] == std::vector<float>{1.0f, 10.0f, -1.0f});  // (0 + 1 + 2) / 3 = 1 exactly
    CHECK(sum[size_t(r)] == std::vector<double>{3.0, 3.0});
    CHECK(broadcast[size_t(r)] == std::vector<float>{1.0f, 2.0f});
  }
}

TEST_CASE("dist: ranks that call different collectives get an error saying so, not each other's bytes") {
  const std::vector<std::string> errors = run_ranks(2, [](const Placement& p) {
    auto comm = dist::connect(p, Device::CPU);
    Tensor t = Tensor::from(std::vector<float>{1, 2}, {2});
    if (p.rank == 0) comm->all_reduce_mean(t);
    else comm->all_reduce_sum({1.0});
  }, 5);
  CHECK(errors[0] ==
        "the ranks called different collectives: rank 1 is at all_reduce_sum of 8 bytes of f64, rank 0 at "
        "all_reduce_mean of 8 bytes of f32");
  CHECK(errors[1].find("rank 0 at 127.0.0.1:") == 0);  // rank 0 left the run
}

// One training step's gradient: the mean cross-entropy of `rows` of the token block, backward
// into the model's flat gradient buffer, scaled by `scale` (gradient accumulation's 1/accum).
static void accumulate(avey::Model& model, const std::vector<int32_t>& tokens, int64_t first, int64_t rows, int64_t T,
                       double scale) {
  std::vector<int32_t> ids, labels;
  for (int64_t b = first; b < first + rows; ++b)
    for (int64_t t = 0; t < T; ++t) {
      ids.push_back(tokens[size_t(b * (T + 1) + t)]);
      labels.push_back(tokens[size_t(b * (T + 1) + t + 1)]);
    }
  Tensor loss = model.loss(Tensor::from(ids, {rows, T}), Tensor::from(labels, {rows, T}));
  (scale != 1.0 ? engine::scale(loss, scale) : loss).backward();
}

TEST_CASE("dist: 2 ranks x B/2 rows == 1 process x B rows (to the bit with accumulation's order)") {
  avey::Config cfg;
  cfg.vocab_size = 64, cfg.d_embed = 16, cfg.n_layers = 2, cfg.split_size = 4, cfg.top_k = 2;
  const int64_t B = 4, T = 16;
  std::vector<int32_t> tokens;
  Rng rng{7};
  for (int64_t i = 0; i < B * (T + 1); ++i) tokens.push_back(int32_t(rng.below(uint64_t(cfg.vocab_size))));

  // one process: the B rows as two micro-batches of B/2 (accumulation), and as one batch of B
  avey::Model accumulated(cfg), whole(cfg);
  accumulated.init(3), whole.init(3);
  accumulated.zero_grad(), whole.zero_grad();
  accumulate(accumulated, tokens, 0, B / 2, T, 0.5);
  accumulate(accumulated, tokens, B / 2, B / 2, T, 0.5);
  accumulate(whole, tokens, 0, B, T, 1.0);

  // two ranks, B/2 rows each, their gradients averaged by the TCP backend
  std::vector<std::vector<float>> grads(2);
  check_all_finished(run_ranks(2, [&](const Placement& p) {
    auto comm = dist::connect(p, Device::CPU);
    avey::Model model(cfg);
    model.init(p.rank == 0 ? 3 : 99);  // rank 1 starts elsewhere: the broadcast gives it rank 0's weights
    comm->broadcast(model.flat_params());
    model.zero_grad();
    accumulate(model, tokens, p.rank * B / 2, B / 2, T, 1.0);
    comm->all_reduce_mean(model.flat_grads());
    grads[size_t(p.rank)] = model.flat_grads().to_vector<float>();
  }));
  const std::vector<float> acc = accumulated.flat_grads().to_vector<float>(), one = whole.flat_grads().to_vector<float>();
  REQUIRE(grads[0].size() == acc.size());
  CHECK(grads[1] == grads[0]);  // every rank takes the same step
  // (g0 + g1) / 2 and g0 / 2 + g1 / 2 are the same floats: halving is exact, the sum the same.
  CHECK(grads[0] == acc);
  // One batch of B: the same mean, its sums in another order; f32 rounding only (~1e-7 of the largest).
  float largest = 0, worst = 0;
  for (size_t i = 0; i < one.size(); ++i) {
    largest = std::max(largest, std::abs(one[i]));
    worst = std::max(worst, std::abs(one[i] - grads[0][i]));
  }
  CHECK(largest > 0);
  CHECK(worst <= 1e-5f * largest);
}
