// Where this process stands in a data-parallel run: its rank among `world` processes, its rank
// on its own machine (which GPU it takes), and where rank 0 waits for the others.
//
// Read from the variables the usual launchers set; the first family present wins:
//   torchrun, and avey train --nproc-per-node N:  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
//   Open MPI's mpirun:  OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK,
//                       OMPI_COMM_WORLD_LOCAL_SIZE
//   Slurm's srun:       SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID. Only srun's tasks have
//                       SLURM_STEP_NUM_TASKS; a batch script has SLURM_PROCID and SLURM_NTASKS too,
//                       but is one process, so it counts as no launcher.
// and, whatever the launcher, MASTER_ADDR and MASTER_PORT (torchrun's defaults, 127.0.0.1 and
// 29500) for the rendezvous (rendezvous.h), AVEY_DIST_TIMEOUT (seconds, default 600) for how
// long a rank waits for the others. None of the families: world 1, the default.
#pragma once
#include <functional>
#include <string>

namespace engine::dist {

struct Placement {
  bool launched = false;  // a launcher's variables were found (even for a world of 1)
  int rank = 0, world = 1;
  int local_rank = 0;   // the GPU this process takes
  int local_world = 0;  // processes on this machine; 0 when the launcher does not say
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 600;
};

// `env` returns a variable's value or nullptr. A value that is not a number in range (a rank
// outside [0, world), a local rank outside [0, local world), a port outside 1..65535, a rank
// without its world size) throws std::invalid_argument: one line naming the variable.
Placement placement_from(const std::function<const char*(const char*)>& env);
Placement placement_from_environment();  // from this process's environment (std::getenv)

}  // namespace engine::dist
