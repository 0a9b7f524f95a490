// The NCCL backend: NCCL's collectives on the engine's one stream (kernels/cuda/memory.h), so
// they run in order with the kernels around them and the host does not wait for them.
//
// Start-up: the process takes the GPU numbered LOCAL_RANK, rank 0 makes NCCL's unique id, the
// rendezvous (rendezvous.h) hands it to the others, and ncclCommInitRank builds the communicator.
// The mean is ncclAvg (NCCL scales each rank's values by 1/world, then sums: for a world of 2^k
// exactly the mean that gradient accumulation gives).
//
// NCCL waits forever for a rank that died; so where this backend waits (all_reduce_sum, which
// returns host values, and broadcast) it polls the stream and NCCL's error state, and after the
// placement's timeout, or at an error, it aborts the communicator and throws one line.
//
// A host-only file (no kernels): g++ compiles it against the CUDA runtime's and NCCL's headers.
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>

#include "engine/dist/backends.h"
#include "engine/dist/rendezvous.h"
#include "kernels/cuda/memory.h"

namespace kernels::cuda {
cudaStream_t stream();  // the engine's one stream (kernels/cuda/common.cuh, a header for nvcc only)
}

namespace engine::dist {

namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(fmt::format("NCCL: {} failed: {}", what, ncclGetErrorString(r)));
}
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(fmt::format("CUDA: {} failed: {}", what, cudaGetErrorString(e)));
}

ncclDataType_t nccl_type(const Tensor& t, const char* op) {
  switch (t.dtype()) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    default: throw std::invalid_argument(std::string(op) + ": NCCL takes f32, f64 or bf16, got " + t.describe());
  }
}

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(const Placement& place) : Communicator(place) {
    int gpus = 0;
    check(cudaGetDeviceCount(&gpus), "cudaGetDeviceCount");
    if (place.local_rank >= gpus)
      throw std::runtime_error(fmt::format("rank {} has local rank {}, but this machine shows {} GPU{}: start at most "
                                           "one process per GPU",
                                           place.rank, place.local_rank, gpus, gpus == 1 ? "" : "s"));
    check(cudaSetDevice(place.local_rank), "cudaSetDevice");
    ncclUniqueId id{};
    if (place.rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const Rendezvous rendezvous(place, std::string(id.internal, sizeof id.internal));
    std::copy(rendezvous.payload().begin(), rendezvous.payload().end(), id.internal);
    check(ncclCommInitRank(&comm_, place.world, id, place.rank), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  void all_reduce_mean(Tensor& t) override {
    check_gpu(t, "all_reduce_mean");
    check(ncclAllReduce(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t, "all_reduce_mean"), ncclAvg, comm_,
                        kernels::cuda::stream()),
          "ncclAllReduce (the gradients' mean)");
  }

  void broadcast(Tensor& t) override {
    check_gpu(t, "broadcast");
    check(ncclBroadcast(t.raw(), t.raw(), size_t(t.numel()), nccl_type(t, "broadcast"), 0, comm_,
                        kernels::cuda::stream()),
          "ncclBroadcast");
    wait("a broadcast from rank 0");
  }

  std::vector<double> all_reduce_sum(const std::vector<double>& values) override {
    std::vector<double> out = values;
    const size_t bytes = out.size() * sizeof(double);
    // device memory from the engine's cache, given back however this ends
    const std::unique_ptr<void, std::function<void(void*)>> buffer(
        kernels::cuda::allocate(bytes), [bytes](void* p) { kernels::cuda::release(p, bytes); });
    kernels::cuda::copy_to_device(buffer.get(), out.data(), bytes);
    check(ncclAllReduce(buffer.get(), buffer.get(), out.size(), ncclFloat64, ncclSum, comm_, kernels::cuda::stream()),
          "ncclAllReduce (a sum of scalars)");
    wait("a sum of scalars over the ranks");
    kernels::cuda::copy_to_host(out.data(), buffer.get(), bytes);
    return out;
  }

 private:
  static void check_gpu(const Tensor& t, const char* op) {
    if (t.device() != Device::CUDA) throw std::invalid_argument(std::string(op) + ": NCCL takes GPU tensors, got " + t.describe());
  }

  // Until the stream has done everything queued so far: NCCL's error state and the timeout polled.
  void wait(const char* what) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    for (;;) {
      const cudaError_t done = cudaStreamQuery(kernels::cuda::stream());
      if (done == cudaSuccess) return;
      if (done != cudaErrorNotReady) check(done, "a collective's stream");
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (state != ncclSuccess || waited > place_.timeout_s) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        throw std::runtime_error(state != ncclSuccess
                                     ? fmt::format("NCCL failed during {}: {} (did a rank stop?)", what,
                                                   ncclGetErrorString(state))
                                     : fmt::format("rank {} waited {:g} s for the others during {} (AVEY_DIST_TIMEOUT): a "
                                                   "rank is stuck, or gone",
                                                   rank(), place_.timeout_s, what));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> nccl_communicator(const Placement& place) { return std::make_unique<NcclCommunicator>(place); }

}  // namespace engine::dist
