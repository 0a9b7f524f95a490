// CPU matrix-product throughput (fp32, the kernels/cpu Eigen path through engine::matmul),
// one thread against all threads, next to the machine's peak estimate:
//   peak per core = 2 FMA units x 8 fp32 lanes (AVX2) x 2 flops per FMA x clock = 32 x GHz GFLOP/s
// with the clock read from /proc/cpuinfo ("cpu MHz", the current clock: an estimate, as turbo
// and frequency scaling move it: where turbo runs above it, "% peak" can pass 100; set
// AVEY_CPU_GHZ to use another clock). A product of M x K by K x N costs 2 M N K flops.
// "all threads" is omp_get_max_threads() (OMP_NUM_THREADS, else the logical CPUs).
// The kernel columns time kernels::cpu::matmul into a preallocated output (the compute); the
// last column times the engine op engine::matmul on one thread, which also allocates its
// output: for large outputs the fresh pages (first-touch faults) are a visible cost.
//
//   ./build/benchmarks/bench_matmul [min seconds per measurement, default 0.3]
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/kernels.h"

using namespace engine;

namespace {

struct Case {
  std::string name;
  int64_t batch, M, K, N;  // batch > 1: [batch, M, K] x [batch, K, N]
};

double cpu_ghz() {
  if (const char* env = std::getenv("AVEY_CPU_GHZ")) return std::stod(env);
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  double best = 0;
  while (std::getline(f, line))
    if (line.rfind("cpu MHz", 0) == 0) best = std::max(best, std::stod(line.substr(line.find(':') + 1)) / 1000.0);
  return best;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

// Best-of-repeats GFLOP/s for one case at the current thread count: the kernel into a
// preallocated output, or (op = true) the engine op, allocation included.
double measure(const Case& c, double min_seconds, bool op) {
  Rng rng(1);
  Shape sa = c.batch > 1 ? Shape{c.batch, c.M, c.K} : Shape{c.M, c.K};
  Shape sb = c.batch > 1 ? Shape{c.batch, c.K, c.N} : Shape{c.K, c.N};
  Tensor a = Tensor::randn(sa, rng), b = Tensor::randn(sb, rng);
  Tensor out = Tensor::zeros({c.batch, c.M, c.N});
  NoGrad no_grad;
  auto run = [&] {
    if (op) {
      Tensor y = matmul(a, b);
    } else {
      kernels::cpu::matmul<float>({.a = a.data<float>(), .b = b.data<float>(), .c = out.data<float>(), .m = c.M,
                                   .n = c.N, .k = c.K, .batch = c.batch, .stride_a = c.M * c.K,
                                   .stride_b = c.K * c.N, .stride_c = c.M * c.N});
    }
  };
  run();  // warm up (page faults, thread pool)
  const double flops = 2.0 * double(c.batch) * double(c.M) * double(c.N) * double(c.K);
  double best = 1e30, total = 0;
  int reps = 0;
  while (total < min_seconds || reps < 3) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    total += dt;
    ++reps;
  }
  return flops / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const double min_seconds = argc > 1 ? std::stod(argv[1]) : 0.3;
  const int threads = omp_get_max_threads();
  const double ghz = cpu_ghz();
  const double peak1 = 32.0 * ghz;  // GFLOP/s, one core
  fmt::print("CPU: {} | {} threads (OpenMP) | clock {:.2f} GHz ({})\n", cpu_model(), threads, ghz,
             std::getenv("AVEY_CPU_GHZ") ? "AVEY_CPU_GHZ" : "/proc/cpuinfo cpu MHz");
  fmt::print("peak estimate (AVX2, 2 FMA x 8 fp32 x 2 flops x GHz): {:.0f} GFLOP/s per core, {:.0f} on {} cores\n\n",
             peak1, peak1 * threads, threads);
  const std::vector<Case> cases = {
      {"square 256", 1, 256, 256, 256},
      {"square 512", 1, 512, 512, 512},
      {"square 1024", 1, 1024, 1024, 1024},
      {"Avey-like 8192x256 . 256x1024", 1, 8192, 256, 1024},
      {"batched 64 x (512x512 . 512x64)", 64, 512, 512, 64},
  };
  fmt::print("{:<34} {:>10} {:>9} {:>10} {:>9} {:>8} {:>10}\n", "shape (fp32)", "1 thread", "% peak1", "all thr.",
             "% peakN", "speedup", "op 1 thr.");
  fmt::print("{:-<34} {:->10} {:->9} {:->10} {:->9} {:->8} {:->10}\n", "", "", "", "", "", "", "");
  for (const Case& c : cases) {
    omp_set_num_threads(1);
    const double g1 = measure(c, min_seconds, false);
    const double g1op = measure(c, min_seconds, true);
    omp_set_num_threads(threads);
    const double gn = measure(c, min_seconds, false);
    fmt::print("{:<34} {:>10.1f} {:>8.0f}% {:>10.1f} {:>8.0f}% {:>7.2f}x {:>10.1f}\n", c.name, g1, 100 * g1 / peak1, gn,
               100 * gn / (peak1 * threads), gn / g1, g1op);
  }
  fmt::print("\nGFLOP/s, best of repeats over >= {} s per cell.\n", min_seconds);
  return 0;
}
