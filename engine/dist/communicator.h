// The collectives of data-parallel training, over the processes of a run (placement.h).
//
// Every rank calls the same collectives in the same order with tensors of the same size and
// dtype (a rank that does otherwise gets an error naming the mismatch on the TCP backend; NCCL
// cannot tell, and waits). Three backends, chosen by connect():
//   world 1      nothing to exchange: every collective leaves its arguments as they are;
//   CPU tensors  the TCP backend (tcp_communicator.cpp): the rendezvous's connections, through
//                rank 0, which adds the ranks' tensors in rank order: the same bits every run.
//                Home-made, for CPU runs and the tests (it proves the training loop's data
//                parallelism without a GPU); not built for speed;
//   GPU tensors  NCCL (nccl_communicator.cpp, built when CMake finds CUDA and NCCL): queued on
//                the engine's one stream, in order with the kernels, so nothing waits for it
//                but all_reduce_sum, which returns host values. Deterministic for a fixed world
//                size and machine (NCCL picks the same algorithm and order every time).
// A rank that stops answering is an error after the placement's timeout (AVEY_DIST_TIMEOUT), a
// rank that leaves one at once: one line, naming the rank and what was being done.
#pragma once
#include <memory>
#include <vector>

#include "engine/dist/placement.h"
#include "engine/tensor.h"

namespace engine::dist {

class Communicator {
 public:
  explicit Communicator(const Placement& place) : place_(place) {}
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return place_.rank; }
  int world() const { return place_.world; }
  int local_rank() const { return place_.local_rank; }

  // t <- the mean over the ranks of their t, in place (t contiguous: a flat buffer). The
  // gradients: f32 on the GPU; f32 or f64 on the CPU.
  virtual void all_reduce_mean(Tensor& t) = 0;
  // t <- rank 0's t, in place.
  virtual void broadcast(Tensor& t) = 0;
  // Each value summed over the ranks, on the host (a step's loss, a stop request).
  virtual std::vector<double> all_reduce_sum(const std::vector<double>& values) = 0;
  // Returns once every rank has called it: a sum that each rank's value is needed for.
  void barrier() { all_reduce_sum({0.0}); }

 protected:
  Placement place_;
};

// This process's communicator for tensors on `device`: world 1's, or after the rendezvous
// (rendezvous.h) the TCP backend's (CPU) or NCCL's (GPU; it first takes the GPU numbered
// local_rank, before anything else uses CUDA). Throws one line when the build has no backend for
// the device, or the rendezvous fails.
std::unique_ptr<Communicator> connect(const Placement& place, Device device);

}  // namespace engine::dist
