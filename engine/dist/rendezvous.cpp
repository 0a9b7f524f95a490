#include "engine/dist/rendezvous.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

namespace engine::dist {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return int(std::clamp<int64_t>(left, 0, 1 << 30));
}

// What a rank says when it connects, and what rank 0 answers.
constexpr char kMagic[8] = {'A', 'V', 'E', 'Y', 'R', 'D', 'V', '1'};
struct Hello {
  char magic[8];
  int32_t rank, world;
};
struct Reply {
  int32_t ok;       // 1: joined, and `length` bytes of payload follow; 0: an error message follows
  uint32_t length;
};

struct AddrInfo {
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list{nullptr, freeaddrinfo};
};
AddrInfo resolve(const std::string& addr, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &found); e != 0)
    throw std::runtime_error(fmt::format("MASTER_ADDR '{}' does not resolve ({})", addr, gai_strerror(e)));
  AddrInfo out;
  out.list.reset(found);
  return out;
}

void no_delay(int fd) {  // the collectives' small messages (a few scalars) go out at once
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A connection to `a` within the deadline, or -1 when nobody listens there yet.
int try_connect(const addrinfo& a, Clock::time_point deadline) {
  const int fd = socket(a.ai_family, a.ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a.ai_protocol);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot make a socket: {}", std::strerror(errno)));
  int err = connect(fd, a.ai_addr, a.ai_addrlen) == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    err = poll(&p, 1, ms_left(deadline)) == 1 ? 0 : ETIMEDOUT;
    socklen_t len = sizeof err;
    if (err == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  no_delay(fd);
  return fd;
}

std::string list_ranks(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- Socket

Socket::Socket(int fd, std::string peer, double timeout_s) : fd_(fd), peer_(std::move(peer)), timeout_s_(timeout_s) {}
Socket::~Socket() {
  if (fd_ >= 0) close(fd_);
}
Socket::Socket(Socket&& other) noexcept { *this = std::move(other); }
Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    peer_ = std::move(other.peer_);
    timeout_s_ = other.timeout_s_;
  }
  return *this;
}

void Socket::wait_for(short events, const char* what) {
  const Clock::time_point deadline = deadline_after(timeout_s_);
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = poll(&p, 1, ms_left(deadline));
    if (n > 0) return;  // ready, or an error that the next send/recv reports
    if (n < 0 && errno != EINTR) throw std::runtime_error(fmt::format("{}: poll failed: {}", what, std::strerror(errno)));
    if (n == 0)
      throw std::runtime_error(fmt::format("waited {:g} s for {} {} (AVEY_DIST_TIMEOUT): it is stuck, or gone",
                                           timeout_s_, peer_, what));
  }
}

void Socket::send(const void* data, size_t nbytes, const char* what) {
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    wait_for(POLLOUT, what);
    const ssize_t n = ::send(fd_, p, nbytes, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw std::runtime_error(fmt::format("{} left the run ({}) while this rank sent it {}", peer_,
                                                    std::strerror(errno), what));
    p += n, nbytes -= size_t(n);
  }
}

void Socket::receive(void* data, size_t nbytes, const char* what) {
  char* p = static_cast<char*>(data);
  while (nbytes > 0) {
    wait_for(POLLIN, what);
    const ssize_t n = ::recv(fd_, p, nbytes, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0)
      throw std::runtime_error(fmt::format("{} left the run ({}) while this rank waited for {}", peer_,
                                           n == 0 ? "its connection closed" : std::strerror(errno), what));
    p += n, nbytes -= size_t(n);
  }
}

// ---------------------------------------------------------------- Rendezvous

Rendezvous::Rendezvous(const Placement& place, const std::string& payload) : links_(size_t(place.world)) {
  if (place.rank == 0) {
    payload_ = payload;
    host(place);
  } else {
    join(place);
  }
}

void Rendezvous::host(const Placement& place) {
  const std::string where = fmt::format("{}:{}", place.master_addr, place.master_port);
  const AddrInfo ai = resolve(place.master_addr, place.master_port);
  const addrinfo& a = *ai.list;
  const int fd = socket(a.ai_family, a.ai_socktype | SOCK_CLOEXEC, a.ai_protocol);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot make a socket: {}", std::strerror(errno)));
  const Socket listener(fd, "the listening socket", place.timeout_s);  // closes fd whatever happens
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a port left in TIME_WAIT by a run that ended
  if (bind(fd, a.ai_addr, a.ai_addrlen) != 0) {
    if (errno == EADDRINUSE)
      throw std::runtime_error(fmt::format("MASTER_PORT {} is in use on {} (another run, or another program): choose "
                                           "another MASTER_PORT",
                                           place.master_port, place.master_addr));
    if (errno == EADDRNOTAVAIL)
      throw std::runtime_error(fmt::format("MASTER_ADDR {} is not an address of this machine, where rank 0 runs and "
                                           "listens", place.master_addr));
    throw std::runtime_error(fmt::format("rank 0 cannot listen on {}: {}", where, std::strerror(errno)));
  }
  if (listen(fd, place.world) != 0)
    throw std::runtime_error(fmt::format("rank 0 cannot listen on {}: {}", where, std::strerror(errno)));

  const Clock::time_point deadline = deadline_after(place.timeout_s);
  for (int joined = 0; joined < place.world - 1;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, ms_left(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      std::vector<int> missing;
      for (int r = 1; r < place.world; ++r)
        if (!links_[size_t(r)].connected()) missing.push_back(r);
      throw std::runtime_error(fmt::format("rank 0 waited {:g} s at {} for rank{} {} of {} (AVEY_DIST_TIMEOUT): were "
                                           "they started, with the same MASTER_ADDR and MASTER_PORT?",
                                           place.timeout_s, where, missing.size() > 1 ? "s" : "", list_ranks(missing),
                                           place.world));
    }
    const int cfd = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    no_delay(cfd);
    // A rank introduces itself at once; give anything else 5 s, then drop it and wait on.
    Socket newcomer(cfd, "a new connection", std::min(5.0, place.timeout_s));
    Hello hello{};
    try {
      newcomer.receive(&hello, sizeof hello, "its introduction");
    } catch (const std::runtime_error&) {
      continue;
    }
    if (std::memcmp(hello.magic, kMagic, sizeof kMagic) != 0) continue;
    std::string problem;
    if (hello.world != place.world)
      problem = fmt::format("rank {} has a world of {}, rank 0 of {}: every rank needs the same world size",
                            hello.rank, hello.world, place.world);
    else if (hello.rank < 1 || hello.rank >= place.world)
      problem = fmt::format("a process says it is rank {}, outside 1..{}", hello.rank, place.world - 1);
    else if (links_[size_t(hello.rank)].connected())
      problem = fmt::format("two processes say they are rank {}: each rank needs its own RANK", hello.rank);
    if (!problem.empty()) {
      const Reply no{0, uint32_t(problem.size())};
      try {
        newcomer.send(&no, sizeof no, "the rendezvous's answer");
        newcomer.send(problem.data(), problem.size(), "the rendezvous's answer");
      } catch (const std::runtime_error&) {
      }
      throw std::runtime_error(problem);
    }
    newcomer.set_peer(fmt::format("rank {}", hello.rank), place.timeout_s);
    links_[size_t(hello.rank)] = std::move(newcomer);
    ++joined;
  }
  const Reply yes{1, uint32_t(payload_.size())};
  for (int r = 1; r < place.world; ++r) {
    links_[size_t(r)].send(&yes, sizeof yes, "the rendezvous's answer");
    links_[size_t(r)].send(payload_.data(), payload_.size(), "the rendezvous's answer");
  }
}

void Rendezvous::join(const Placement& place) {
  const std::string where = fmt::format("{}:{}", place.master_addr, place.master_port);
  const AddrInfo ai = resolve(place.master_addr, place.master_port);
  const Clock::time_point deadline = deadline_after(place.timeout_s);
  int fd = -1;
  while (fd < 0) {  // rank 0 may not be listening yet: try again until the deadline
    for (const addrinfo* a = ai.list.get(); a && fd < 0; a = a->ai_next) fd = try_connect(*a, deadline);
    if (fd >= 0) break;
    if (Clock::now() >= deadline)
      throw std::runtime_error(fmt::format("rank {} could not reach rank 0 at {} within {:g} s (AVEY_DIST_TIMEOUT): is "
                                           "rank 0 running, with the same MASTER_ADDR and MASTER_PORT?",
                                           place.rank, where, place.timeout_s));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100, ms_left(deadline))));
  }
  Socket& link = links_[0] = Socket(fd, "rank 0 at " + where, place.timeout_s);
  Hello hello{};
  std::memcpy(hello.magic, kMagic, sizeof kMagic);
  hello.rank = place.rank, hello.world = place.world;
  link.send(&hello, sizeof hello, "this rank's introduction");
  Reply reply{};
  link.receive(&reply, sizeof reply, "the rendezvous's answer (all ranks joined)");
  std::string text(reply.length, '\0');
  link.receive(text.data(), text.size(), "the rendezvous's answer");
  if (!reply.ok) throw std::runtime_error("rank 0 refused this rank: " + text);
  payload_ = std::move(text);
}

int free_port(const std::string& addr) {
  const AddrInfo ai = resolve(addr, 0);
  const addrinfo& a = *ai.list;
  const int fd = socket(a.ai_family, a.ai_socktype | SOCK_CLOEXEC, a.ai_protocol);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot make a socket: {}", std::strerror(errno)));
  const Socket closer(fd, "", 0);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (bind(fd, a.ai_addr, a.ai_addrlen) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    throw std::runtime_error(fmt::format("no free port on {}: {}", addr, std::strerror(errno)));
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                           : reinterpret_cast<sockaddr_in&>(bound).sin_port);
}

}  // namespace engine::dist
