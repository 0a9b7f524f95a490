// avey train data parallel, as a user runs it: --nproc-per-node 2 starts two CPU processes that
// meet over loopback TCP (engine/dist), and must train exactly the run of one process with
// --grad-accum 2 (cli/data_parallel.h says why), across a stop and --resume too.
#include "cli_testing.h"

using namespace cli_testing;

TEST_CASE("cli: --nproc-per-node 2 trains the run of --grad-accum 2, bit for bit, stopped and resumed too") {
  fs::path dir = setup_run_inputs(scratch("dist"));
  Result one = avey(dir, train_flags(dir, "one") + " --grad-accum 2 --sample-every 3");
  REQUIRE_MESSAGE(one.code == 0, one.err);
  Result first = avey(dir, train_flags(dir, "two") + " --sample-every 3 --nproc-per-node 2 --stop-at 3");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  CHECK(first.out.find("batch 2 x 32 x 1 accum x 2 ranks") != std::string::npos);
  CHECK(first.out.find("step     1/6") == first.out.rfind("step     1/6"));  // rank 0 alone prints
  Result rest = avey(dir, "train --resume --device cpu --nproc-per-node 2 --out " + (dir / "two").string());
  REQUIRE_MESSAGE(rest.code == 0, rest.err);

  REQUIRE(losses(dir / "one/metrics.jsonl").size() == 6);
  check_same_run(dir / "one", dir / "two");
  CHECK(slurp(dir / "one/samples.txt") == slurp(dir / "two/samples.txt"));  // the generator stayed in step
  CHECK(slurp(dir / "two/run.json").find("\"world_size\": 2") != std::string::npos);

  // The data position and global batch count the ranks: resuming with another number is refused.
  Result other = avey(dir, "train --resume --device cpu --out " + (dir / "two").string() + "");
  CHECK(other.code == 2);
  CHECK(other.err == "avey train: the run in " + (dir / "two").string() +
                         " was started with 2 processes, this one has 1: resume it with the same number (its global "
                         "batch and data position count them)\n");
  fs::remove_all(dir);
}

TEST_CASE("cli: an Avey-B run on 2 processes masks as one process with --grad-accum 2 does") {
  fs::path dir = setup_run_inputs(scratch("dist-encoder"));
  std::ofstream(dir / "enc.json") << R"({"model": "avey-b", "vocab_size": 260, "mask_id": 257, "d_embed": 16,
                                         "n_layers": 1, "split_size": 8, "top_k": 2, "seq_len": 32})";
  const std::string flags = "train --config enc.json --tokenizer bytes --data text.txt --device cpu --batch-size 2 "
                            "--max-steps 3 --eval-every 0 --sample-every 0";
  REQUIRE(avey(dir, flags + " --grad-accum 2 --out one").code == 0);
  Result two = avey(dir, flags + " --nproc-per-node 2 --out two");
  REQUIRE_MESSAGE(two.code == 0, two.err);
  check_same_run(dir / "one", dir / "two");
  fs::remove_all(dir);
}

TEST_CASE("cli: SIGTERM to the launcher stops both ranks after one step, and the run resumes bit-identically") {
  fs::path dir = setup_run_inputs(scratch("dist-sigterm"));
  const std::string log = stop_with_sigterm(dir, train_flags(dir, "stopped", 400) + " --eval-every 100 --nproc-per-node 2");
  CHECK(log.find("[rank") == std::string::npos);  // rank 1 stopped too, and said nothing
  check_resumes_as_whole(dir, "train --resume --device cpu --nproc-per-node 2 --out stopped",
                         train_flags(dir, "whole", 400) + " --eval-every 100 --grad-accum 2");
  fs::remove_all(dir);
}

TEST_CASE("cli: a bad launcher variable, or a worker's failure, is one line and the right exit code") {
  fs::path dir = setup_run_inputs(scratch("dist-errors"));
  Result r = avey_shell(dir, "RANK=3 WORLD_SIZE=2", train_flags(dir, "run"));
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: RANK='3' is not an integer in [0, 1] (WORLD_SIZE is 2)\n");
  CHECK(!fs::exists(dir / "run"));
  r = avey(dir, train_flags(dir, "run") + " --nproc-per-node 0");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --nproc-per-node must be >= 1, got 0\n");

  // rank 0 refuses a folder that holds a run; rank 1, left alone, ends; rank 0's line and code
  REQUIRE(avey(dir, train_flags(dir, "run", 1)).code == 0);
  r = avey(dir, train_flags(dir, "run", 1) + " --nproc-per-node 2");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("avey train: " + (dir / "run").string() + " already holds a run") != std::string::npos);
  fs::remove_all(dir);
}
