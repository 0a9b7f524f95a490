// `avey train` under faults: kill -9 at any moment, SIGTERM, a full disk during a save, two
// trainings into one folder, logs written past the checkpoint. Whatever happens, --resume
// either continues exactly as the uninterrupted run would have, or says in one line why not.
#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "tests/cli_testing.h"

using namespace cli_testing;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("cli: kill -9 at any moment never yields a wrong resume") {
  fs::path dir = setup_run_inputs(scratch("kill9"));
  auto flags = [&](const std::string& out) {
    return train_flags(dir, out, 40) + " --save-every 1 --eval-every 5 --keep-last 2";
  };
  const auto t0 = std::chrono::steady_clock::now();
  Result whole = avey(dir, flags("whole"));
  REQUIRE_MESSAGE(whole.code == 0, whole.err);
  const double duration = seconds_since(t0);
  // 20 kills, each 0.5% to 6.5% of an uninterrupted run's length after its process started: in
  // the start-up, in a step, in a save. Each run after a kill resumes (or starts again, when it
  // was killed before its run.json was written); together they get through about 70% of the run.
  const int kills = 20;
  int killed = 0;
  bool finished = false;
  auto run_once = [&](bool kill) {
    const bool started = fs::exists(dir / "killed/run.json");
    pid_t pid = start_avey(dir, started ? "train --resume --device cpu --out killed" : flags("killed"));
    if (kill) {
      std::this_thread::sleep_for(std::chrono::duration<double>(duration * (0.005 + 0.06 * (killed * 7 % kills) / kills)));
      ::kill(pid, SIGKILL);
    }
    const int code = wait_for(pid);
    // Every resume found a whole checkpoint: a run ends by the kill or by finishing, never by an error.
    REQUIRE_MESSAGE((code == 0 || code == 128 + SIGKILL), slurp(dir / "bg.txt"));
    finished = code == 0;
    killed += !finished;
  };
  while (killed < kills && !finished) run_once(true);
  if (!finished) run_once(false);
  REQUIRE(finished);
  MESSAGE(killed << " runs killed (the uninterrupted run took " << duration << " s)");
  CHECK(killed > kills / 2);
  check_same_run(dir / "whole", dir / "killed");
  fs::remove_all(dir);
}

TEST_CASE("cli: SIGTERM saves a checkpoint after the step in progress, and the run resumes bit-identically") {
  fs::path dir = setup_run_inputs(scratch("sigterm"));
  const std::string flags = train_flags(dir, "stopped", 400) + " --eval-every 100";
  const std::string log = stop_with_sigterm(dir, flags);
  const int64_t step = std::stoll(log.substr(log.find("after step ") + 11));
  CHECK(latest(dir / "stopped").filename() == fmt::format("step-{:08}", step));
  CHECK(losses(dir / "stopped/metrics.jsonl").size() == size_t(step));  // every step's line is there
  check_resumes_as_whole(dir, "train --resume --device cpu --out stopped",
                         train_flags(dir, "whole", 400) + " --eval-every 100");
  fs::remove_all(dir);
}

TEST_CASE("cli: a full disk during a save is one line, the last checkpoint stays whole and resumes") {
  fs::path dir = setup_run_inputs(scratch("disk-full"));
  REQUIRE(avey(dir, train_flags(dir, "run") + " --stop-at 2").code == 0);
  // ulimit -f caps every file the process writes (in 512-byte blocks); with SIGXFSZ ignored a write
  // past it fails as on a full disk. 80 blocks hold the weights (27 KB), not the moments (53 KB).
  Result r = avey_shell(dir, "trap '' XFSZ; ulimit -f 80;", "train --resume --device cpu --out run");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("optimizer.bin: write failed (File too large)") != std::string::npos);
  CHECK(latest(dir / "run").filename() == "step-00000002");
  for (const auto& e : fs::directory_iterator(dir / "run")) CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  REQUIRE(avey(dir, "train --resume --device cpu --out run").code == 0);
  REQUIRE(avey(dir, train_flags(dir, "whole")).code == 0);
  check_same_run(dir / "whole", dir / "run");
  fs::remove_all(dir);
}

TEST_CASE("cli: a second training into a folder in use is refused, the lock dies with its process") {
  fs::path dir = setup_run_inputs(scratch("lock"));
  pid_t pid = start_avey(dir, train_flags(dir, "run", 100000) + " --eval-every 0");  // no checkpoint before the end
  wait_for_first_step(dir / "run");
  Result r = avey(dir, "train --resume --device cpu --out run");
  CHECK(r.code == 2);
  CHECK(r.err == fmt::format("avey train: run is in use by another avey train (pid {}); wait for it to finish or "
                             "choose another --out\n", pid));
  r = avey(dir, train_flags(dir, "run"));
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  ::kill(pid, SIGKILL);
  wait_for(pid);
  r = avey(dir, "train --resume --device cpu --out run --stop-at 1");
  CHECK_MESSAGE(r.code == 0, r.err);  // a run killed before its first checkpoint starts again
  CHECK(r.out.find("holds no checkpoint yet: starting the run again from step 0") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: --resume cuts the logs back to the checkpoint (lines written after it, a torn last line)") {
  fs::path dir = setup_run_inputs(scratch("cut-logs"));
  REQUIRE(avey(dir, train_flags(dir, "run") + " --stop-at 3 --sample-every 2").code == 0);
  std::ofstream(dir / "run/metrics.jsonl", std::ios::app) << "{\"step\": 4, \"loss\": 9.5}\n{\"step\": 5, \"lo";
  std::ofstream(dir / "run/samples.txt", std::ios::app) << "=== step 4 ===\nnot kept\n";
  REQUIRE(avey(dir, "train --resume --device cpu --out run").code == 0);
  REQUIRE(avey(dir, train_flags(dir, "whole") + " --sample-every 2").code == 0);
  check_same_run(dir / "whole", dir / "run");
  CHECK(slurp(dir / "run/samples.txt") == slurp(dir / "whole/samples.txt"));
  fs::remove_all(dir);
}
