// The rendezvous: how the processes of a run find each other before their first collective.
//
// Rank 0 listens on MASTER_ADDR:MASTER_PORT (TCP); every other rank connects to it, retrying
// while rank 0 is not up yet, and says who it is: "AVEYRDV1", its rank and the world size. Once
// all world - 1 have joined, rank 0 answers each with `payload` (NCCL's 128-byte unique id, so
// that all ranks build one NCCL communicator; the TCP backend needs none) and every rank keeps
// its connections: rank 0 one per other rank, the others one to rank 0 (the TCP backend's links).
//
// Everything is bounded by the placement's timeout (AVEY_DIST_TIMEOUT), and every failure is one
// std::runtime_error line that says what to do: the port is in use, MASTER_ADDR is not an address
// of rank 0's machine, rank 0 cannot be reached, ranks that never joined, two ranks with one
// number, ranks that disagree on the world size. A connection that does not introduce itself as
// a rank (a port scanner) is closed and the wait goes on.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "engine/dist/placement.h"

namespace engine::dist {

// A connected TCP socket that sends and receives whole messages; each call waits at most
// `timeout_s` for the other side, then throws, naming `peer` and `what` it was doing.
class Socket {
 public:
  Socket() = default;
  Socket(int fd, std::string peer, double timeout_s);
  ~Socket();
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  void send(const void* data, size_t nbytes, const char* what);
  void receive(void* data, size_t nbytes, const char* what);
  bool connected() const { return fd_ >= 0; }
  const std::string& peer() const { return peer_; }
  void set_peer(std::string peer, double timeout_s) { peer_ = std::move(peer), timeout_s_ = timeout_s; }

 private:
  void wait_for(short events, const char* what);  // poll until ready, or throw after the timeout
  int fd_ = -1;
  std::string peer_;
  double timeout_s_ = 0;
};

class Rendezvous {
 public:
  // Rank 0 hands out `payload`; the others' argument is ignored (see payload()). Returns once
  // every rank has joined.
  explicit Rendezvous(const Placement& place, const std::string& payload = "");
  const std::string& payload() const { return payload_; }  // what rank 0 handed out
  // The connections, indexed by rank: rank 0 has one for every rank r > 0 (links[0] unused);
  // any other rank has links[0], to rank 0.
  std::vector<Socket>& links() { return links_; }

 private:
  void host(const Placement& place);  // rank 0
  void join(const Placement& place);  // the others
  std::string payload_;
  std::vector<Socket> links_;
};

// A TCP port that was free on `addr` a moment ago (the system's choice), for a launcher that
// picks MASTER_PORT itself.
int free_port(const std::string& addr);

}  // namespace engine::dist
