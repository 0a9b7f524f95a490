#include "cli/launch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "engine/device_info.h"
#include "engine/dist/rendezvous.h"

extern char** environ;

namespace fs = std::filesystem;

namespace {

// The workers, for the signal handler: filled before it is installed, read-only after.
std::vector<pid_t> g_workers;
volatile std::sig_atomic_t g_signalled = 0;

void pass_on(int sig) {
  g_signalled = sig;
  for (pid_t pid : g_workers) kill(pid, sig);
}

// A worker's environment: this one's, with the launcher's variables replaced.
std::vector<std::string> worker_environment(const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const auto& [name, value] : set) replaced |= entry.rfind(name + "=", 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [name, value] : set) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

std::string read_line(const fs::path& path) {
  std::string line;
  std::getline(std::ifstream(path), line);
  return line;
}

}  // namespace

engine::dist::Placement placement_from_launcher() {
  try {
    return engine::dist::placement_from_environment();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("avey train: ") + e.what());
  }
}

std::optional<int> launch_workers(int64_t nproc, engine::Device device, int argc, char** argv) {
  if (nproc < 1) throw UsageError(fmt::format("avey train: --nproc-per-node must be >= 1, got {}", nproc));
  const engine::dist::Placement here = placement_from_launcher();
  if (here.launched) {
    if (nproc > 1 && here.local_world > 0 && here.local_world != nproc)
      throw UsageError(fmt::format("avey train: --nproc-per-node {}, but this process's launcher started {} per machine",
                                   nproc, here.local_world));
    return std::nullopt;
  }
  if (nproc == 1) return std::nullopt;
  if (device == engine::Device::CUDA && nproc > engine::cuda_device_count())
    throw UsageError(fmt::format("avey train: --nproc-per-node {}, but this machine shows {} GPUs (one process each)",
                                 nproc, engine::cuda_device_count()));
  const int port = std::getenv("MASTER_PORT") ? here.master_port : engine::dist::free_port(here.master_addr);
  const int threads = std::max(1, int(std::thread::hardware_concurrency()) / int(nproc));

  // Everything a worker needs is made before the first fork: after it, the child calls only
  // what is safe in a copy of a threaded process, up to exec.
  char dir_template[] = "/tmp/avey-launch-XXXXXX";
  if (!mkdtemp(dir_template)) throw std::runtime_error("cannot make a temporary folder for the workers' error lines");
  const fs::path errors = dir_template;
  std::vector<std::string> args = {"avey"};
  for (int i = 0; i < argc; ++i) args.emplace_back(argv[i]);
  std::vector<char*> arg_pointers = pointers(args);
  std::vector<std::vector<std::string>> envs;
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::pair<std::string, std::string>> set = {
        {"RANK", std::to_string(r)},         {"LOCAL_RANK", std::to_string(r)},
        {"WORLD_SIZE", std::to_string(nproc)}, {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
        {"MASTER_ADDR", here.master_addr},   {"MASTER_PORT", std::to_string(port)},
        {"AVEY_ERROR_FILE", (errors / fmt::format("rank-{}.txt", r)).string()}};
    if (!std::getenv("OMP_NUM_THREADS")) set.emplace_back("OMP_NUM_THREADS", std::to_string(threads));
    envs.push_back(worker_environment(set));
  }
  std::vector<std::vector<char*>> env_pointers;
  for (auto& env : envs) env_pointers.push_back(pointers(env));

  const pid_t launcher = getpid();
  g_workers.clear();
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      for (pid_t w : g_workers) kill(w, SIGKILL);
      throw std::runtime_error("cannot start the workers (fork failed)");
    }
    if (pid == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != launcher) _exit(1);  // the launcher died before prctl
      if (r > 0) {  // rank 0 speaks for all
        const int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
      }
      execve("/proc/self/exe", arg_pointers.data(), env_pointers[size_t(r)].data());
      _exit(127);
    }
    g_workers.push_back(pid);
  }

  struct sigaction sa {}, previous[2];
  sa.sa_handler = pass_on;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &previous[0]);
  sigaction(SIGTERM, &sa, &previous[1]);

  // Wait for every worker. After the first failure (unless a signal is stopping them all), the
  // others get 5 s to end by themselves (a rank whose peer left fails at once on the TCP
  // backend, and rank 0 may still be writing its error line), then SIGTERM, then SIGKILL.
  std::vector<int> code(size_t(nproc), -1);
  int first_failure = -1;
  using Clock = std::chrono::steady_clock;
  Clock::time_point term_at = Clock::time_point::max(), kill_at = Clock::time_point::max();
  auto signal_running = [&](int sig) {
    for (size_t r = 0; r < g_workers.size(); ++r)
      if (code[r] < 0) kill(g_workers[r], sig);
  };
  for (int left = int(nproc); left > 0;) {
    int status = 0;
    const bool stopping = first_failure >= 0;
    const pid_t pid = waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    if (pid == 0) {  // stopping, nobody ended yet
      if (Clock::now() > term_at) signal_running(SIGTERM), term_at = Clock::time_point::max();
      if (Clock::now() > kill_at) signal_running(SIGKILL), kill_at = Clock::time_point::max();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const size_t r = size_t(std::find(g_workers.begin(), g_workers.end(), pid) - g_workers.begin());
    if (r == g_workers.size()) continue;
    code[r] = exit_code(status);
    --left;
    if (code[r] != 0 && first_failure < 0) {
      first_failure = int(r);
      if (!g_signalled) term_at = Clock::now() + std::chrono::seconds(5), kill_at = term_at + std::chrono::seconds(30);
    }
  }
  sigaction(SIGINT, &previous[0], nullptr);
  sigaction(SIGTERM, &previous[1], nullptr);
  g_workers.clear();

  // Stopped by a signal: each worker saved and said so, or failed and said why (rank 0's words
  // are the ones shown). Else rank 0 printed its own error when it had one (exit code 1 or 2);
  // when it did not, the first failure's line is shown.
  const bool rank0_said_why = code[0] == 1 || code[0] == 2;
  if (first_failure >= 0 && !g_signalled && !rank0_said_why) {
    const std::string line = read_line(errors / fmt::format("rank-{}.txt", first_failure));
    if (line.empty())
      fmt::print(stderr, "avey train: rank {} ended with exit code {}{}\n", first_failure, code[size_t(first_failure)],
                 code[size_t(first_failure)] > 128 ? fmt::format(" (signal {})", code[size_t(first_failure)] - 128) : "");
    else
      fmt::print(stderr, "[rank {}] {}\n", first_failure, line);
  }
  std::error_code ec;
  fs::remove_all(errors, ec);
  if (first_failure < 0) return 0;
  return code[0] != 0 ? code[0] : code[size_t(first_failure)];
}
