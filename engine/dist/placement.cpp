#include "engine/dist/placement.h"

#include <fmt/format.h>

#include <cstdlib>
#include <stdexcept>

namespace engine::dist {

namespace {

// The variable's value as an integer in [lo, hi]; `fallback` when it is not set. `bound` says
// where hi comes from, for the error.
int64_t integer(const std::function<const char*(const char*)>& env, const char* name, int64_t lo, int64_t hi,
                int64_t fallback, const std::string& bound = "") {
  const char* v = env(name);
  if (!v) return fallback;
  const std::string s = v;
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || x < lo || x > hi)
    throw std::invalid_argument(fmt::format("{}='{}' is not an integer in [{}, {}]{}", name, s, lo, hi, bound));
  return x;
}

}  // namespace

Placement placement_from(const std::function<const char*(const char*)>& env) {
  // Each launcher's variables, in order of precedence. A rank without its world size is a
  // mistake, but for Slurm: its batch script has SLURM_PROCID alone, and is one process.
  struct Family {
    const char *rank, *world, *local_rank, *local_world;
    bool rank_alone_is_one_process;
  };
  const Family families[] = {
      {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", false},
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", false},
      {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", nullptr, true},
  };
  Placement p;
  for (const Family& f : families) {
    const bool has_rank = env(f.rank) != nullptr, has_world = env(f.world) != nullptr;
    if (!has_world && (!has_rank || f.rank_alone_is_one_process)) continue;
    if (!has_rank || !has_world)
      throw std::invalid_argument(fmt::format("{} is set but not {}: a launcher sets both", has_rank ? f.rank : f.world,
                                              has_rank ? f.world : f.rank));
    p.launched = true;
    p.world = int(integer(env, f.world, 1, 1 << 20, 1));
    const std::string of_world = fmt::format(" ({} is {})", f.world, p.world);
    p.rank = int(integer(env, f.rank, 0, p.world - 1, 0, of_world));
    p.local_world = f.local_world ? int(integer(env, f.local_world, 1, p.world, 0, of_world)) : 0;
    p.local_rank = int(p.local_world > 0 ? integer(env, f.local_rank, 0, p.local_world - 1, 0,
                                                   fmt::format(" ({} is {})", f.local_world, p.local_world))
                                         : integer(env, f.local_rank, 0, p.world - 1, 0, of_world));
    break;
  }
  if (const char* addr = env("MASTER_ADDR")) {
    if (!*addr) throw std::invalid_argument("MASTER_ADDR is set but empty");
    p.master_addr = addr;
  }
  p.master_port = int(integer(env, "MASTER_PORT", 1, 65535, p.master_port));
  p.timeout_s = double(integer(env, "AVEY_DIST_TIMEOUT", 1, 7 * 24 * 3600, int64_t(p.timeout_s)));
  return p;
}

Placement placement_from_environment() {
  return placement_from([](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

}  // namespace engine::dist
