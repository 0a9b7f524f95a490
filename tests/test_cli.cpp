// The `avey` command as a user meets it: a run resumed from a checkpoint continues
// bit-identically, and bad input (a bad flag, a corrupt checkpoint, a wrong vocabulary, a NaN
// loss) gives one clear error line and loses no data. Runs the built binary on a tiny model
// with the byte tokenizer, on a small text written by the test.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/cli_testing.h"

namespace fs = std::filesystem;

using namespace cli_testing;

namespace {

std::vector<std::string> losses(const fs::path& metrics) {
  std::vector<std::string> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find("\"loss\":"), b = line.find(',', a);
    out.push_back(line.substr(a, b - a));
  }
  return out;
}

}  // namespace

TEST_CASE("cli: a run stopped and resumed equals the same run uninterrupted, bit for bit") {
  fs::path dir = setup_run_inputs(scratch("resume"));
  Result whole = avey(dir, train_flags(dir, "whole"));
  REQUIRE_MESSAGE(whole.code == 0, whole.err);
  Result first = avey(dir, train_flags(dir, "split") + " --stop-at 3");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  Result rest = avey(dir, "train --resume --device cpu --out " + (dir / "split").string() +
                              " --eval-every 3 --eval-batches 1 --sample-every 0 --save-every 0");
  REQUIRE_MESSAGE(rest.code == 0, rest.err);
  auto a = losses(dir / "whole/metrics.jsonl"), b = losses(dir / "split/metrics.jsonl");
  REQUIRE(a.size() == 6);
  CHECK(a == b);  // the loss strings hold every digit of the doubles
  CHECK(slurp(dir / "whole/model.safetensors") == slurp(dir / "split/model.safetensors"));
  CHECK(slurp(dir / "whole/optimizer.bin") == slurp(dir / "split/optimizer.bin"));
  fs::remove_all(dir);
}

TEST_CASE("cli: bad flags are one clear line and exit code 2") {
  fs::path dir = scratch("flags");
  Result r = avey(dir, "train --bogus 3");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: unknown flag --bogus (see avey train --help)\n");
  r = avey(dir, "train --max-steps ten");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --max-steps expects an integer, got 'ten'\n");
  r = avey(dir, "frobnicate");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  fs::remove_all(dir);
}

TEST_CASE("cli: a wrong vocabulary is refused before anything runs") {
  fs::path dir = setup_run_inputs(scratch("vocab"));
  std::ofstream(dir / "small-vocab.json") << R"({"vocab_size": 100, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  Result r = avey(dir, "train --config " + (dir / "small-vocab.json").string() + " --tokenizer bytes --data " +
                           (dir / "text.txt").string() + " --out " + (dir / "run").string());
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("tokenizer bytes has 257 ids but the model's vocab_size is 100") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("cli: a corrupt checkpoint is one clear error and is left as it was") {
  fs::path dir = setup_run_inputs(scratch("corrupt"));
  REQUIRE(avey(dir, train_flags(dir, "run")).code == 0);
  const fs::path weights = dir / "run/model.safetensors";
  std::string bytes = slurp(weights);
  std::ofstream(weights, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  const std::string truncated = slurp(weights);
  Result r = avey(dir, "generate --device cpu --checkpoint " + (dir / "run").string() + " --max-new-tokens 4");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("model.safetensors") != std::string::npos);
  r = avey(dir, "train --resume --device cpu --out " + (dir / "run").string());
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(slurp(weights) == truncated);  // nothing overwritten
  // An existing run is never overwritten by a new one.
  r = avey(dir, train_flags(dir, "run"));
  CHECK(r.code == 2);
  CHECK(r.err.find("already holds a run") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: a NaN loss stops training with one line, keeping the last good checkpoint") {
  fs::path dir = setup_run_inputs(scratch("nan"));
  // A learning rate this large blows the weights up within a few steps.
  Result r = avey(dir, train_flags(dir, "run") + " --lr 1e30 --save-every 1 --clip 0 --max-steps 6");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("became non-finite at step") != std::string::npos);
  std::ifstream in(dir / "run/train_state.json");
  std::string state((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(state.find("\"step\"") != std::string::npos);
  Result gen = avey(dir, "eval --device cpu --checkpoint " + (dir / "run").string() + " --data " +
                             (dir / "text.txt").string() + " --seq-len 32 --max-batches 1");
  CHECK_MESSAGE(gen.code == 0, gen.err);  // the checkpoint left behind still loads
  fs::remove_all(dir);
}
