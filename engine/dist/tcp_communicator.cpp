// The TCP backend: collectives over the rendezvous's connections (rendezvous.h), through rank 0.
//
// Every message starts with a header (which collective, the dtype, the bytes that follow), and
// both sides check it against their own call, so ranks that call different collectives fail
// with an error that says so rather than exchange the wrong bytes.
//   all_reduce_mean / all_reduce_sum: each rank r > 0 sends its values to rank 0; rank 0 adds
//     them to its own in rank order, ((x0 + x1) + x2) + ..., divides by the world size for the
//     mean, and sends the result back to every rank. A fixed order, so the same bits every run;
//     and for a world of 2^k the mean is exactly what k halvings of gradient accumulation give
//     ((x0 / 2 + x1 / 2) is (x0 + x1) / 2 to the bit: scaling by 2 is exact).
//   broadcast: rank 0 sends its values to every rank.
// Cost: rank 0 receives and sends (world - 1) buffers one after the other: fine for the CPU
// runs and tests it is for; NCCL's ring does the GPU's.
#include <fmt/format.h>

#include <stdexcept>

#include "engine/dist/backends.h"
#include "engine/dist/rendezvous.h"

namespace engine::dist {

namespace {

enum class Op : uint32_t { Mean = 1, Sum = 2, Broadcast = 3 };

struct Header {
  Op op;
  DType dtype;
  uint64_t bytes;
  bool operator==(const Header&) const = default;
};

std::string describe(const Header& h) {
  const char* op = h.op == Op::Mean ? "all_reduce_mean" : h.op == Op::Sum ? "all_reduce_sum" : "broadcast";
  return fmt::format("{} of {} bytes of {}", op, h.bytes, name_of(h.dtype));
}

class TcpCommunicator : public Communicator {
 public:
  explicit TcpCommunicator(const Placement& place) : Communicator(place), rendezvous_(place) {}

  void all_reduce_mean(Tensor& t) override {
    check_host(t, "all_reduce_mean");
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64)
      throw std::invalid_argument("all_reduce_mean: f32 or f64 on the CPU, got " + t.describe());
    reduce(t.raw(), size_t(t.numel()), t.dtype(), Op::Mean);
  }

  std::vector<double> all_reduce_sum(const std::vector<double>& values) override {
    std::vector<double> out = values;
    reduce(out.data(), out.size(), DType::F64, Op::Sum);
    return out;
  }

  void broadcast(Tensor& t) override {
    check_host(t, "broadcast");
    const Header h{Op::Broadcast, t.dtype(), uint64_t(t.numel()) * size_of(t.dtype())};
    std::vector<Socket>& links = rendezvous_.links();
    if (rank() == 0) {
      for (int r = 1; r < world(); ++r) send(links[size_t(r)], h, t.raw());
    } else {
      receive(links[0], h, t.raw());
    }
  }

 private:
  static void check_host(const Tensor& t, const char* op) {
    if (t.device() != Device::CPU) throw std::invalid_argument(std::string(op) + ": the TCP backend takes CPU tensors, got " + t.describe());
  }

  static void send(Socket& link, const Header& h, const void* data) {
    link.send(&h, sizeof h, "a collective's header");
    link.send(data, h.bytes, "a collective's values");
  }
  // Receives the header, which must be `expected` (the same collective on both sides), then the values.
  void receive(Socket& link, const Header& expected, void* data) {
    Header h{};
    link.receive(&h, sizeof h, ("the header of " + describe(expected)).c_str());
    if (!(h == expected))
      throw std::runtime_error(fmt::format("the ranks called different collectives: {} is at {}, rank {} at {}",
                                           link.peer(), describe(h), rank(), describe(expected)));
    link.receive(data, h.bytes, ("the values of " + describe(expected)).c_str());
  }

  void reduce(void* data, size_t n, DType dtype, Op op) {
    const Header h{op, dtype, uint64_t(n) * size_of(dtype)};
    std::vector<Socket>& links = rendezvous_.links();
    if (rank() != 0) {
      send(links[0], h, data);
      receive(links[0], h, data);
      return;
    }
    if (dtype == DType::F32) add_in_rank_order(static_cast<float*>(data), n, h);
    else add_in_rank_order(static_cast<double*>(data), n, h);
    for (int r = 1; r < world(); ++r) send(links[size_t(r)], h, data);
  }

  // Rank 0: data <- ((data + x1) + x2) + ..., then / world for the mean.
  template <class T>
  void add_in_rank_order(T* data, size_t n, const Header& h) {
    std::vector<T> part(n);
    for (int r = 1; r < world(); ++r) {
      receive(rendezvous_.links()[size_t(r)], h, part.data());
      for (size_t i = 0; i < n; ++i) data[i] += part[i];
    }
    if (h.op == Op::Mean)
      for (size_t i = 0; i < n; ++i) data[i] /= T(world());
  }

  Rendezvous rendezvous_;
};

}  // namespace

std::unique_ptr<Communicator> tcp_communicator(const Placement& place) { return std::make_unique<TcpCommunicator>(place); }

}  // namespace engine::dist
