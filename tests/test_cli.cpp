// The `avey` command as a user meets it: a run resumed from a checkpoint continues
// bit-identically (from any working directory, with the run's own settings), bad input (a bad
// flag, a corrupt checkpoint, a wrong vocabulary, a NaN loss) gives one clear error line and
// loses no data, and the commands that take a model read every kind of folder. Runs the built
// binary on a tiny model with the byte tokenizer, on a small text written by the test.
// Faults (kill -9, SIGTERM, a full disk, two trainings at once): test_cli_faults.cpp.
#include "tests/cli_testing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"

using namespace cli_testing;

TEST_CASE("cli: a run stopped and resumed equals the same run uninterrupted, bit for bit") {
  fs::path dir = setup_run_inputs(scratch("resume"));
  Result whole = avey(dir, train_flags(dir, "whole"));
  REQUIRE_MESSAGE(whole.code == 0, whole.err);
  Result first = avey(dir, train_flags(dir, "split") + " --stop-at 3");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  // From another working directory, naming no flag but the folder: the run keeps its settings.
  Result rest = avey(fs::temp_directory_path(), "train --resume --device cpu --out " + (dir / "split").string());
  REQUIRE_MESSAGE(rest.code == 0, rest.err);
  auto a = losses(dir / "whole/metrics.jsonl"), b = losses(dir / "split/metrics.jsonl");
  REQUIRE(a.size() == 6);
  CHECK(a == b);  // the loss strings hold every digit of the doubles
  CHECK(slurp(latest(dir / "whole") / "model.safetensors") == slurp(latest(dir / "split") / "model.safetensors"));
  CHECK(slurp(latest(dir / "whole") / "optimizer.bin") == slurp(latest(dir / "split") / "optimizer.bin"));
  CHECK(evaluated_steps(dir / "split/metrics.jsonl") == std::vector<int64_t>{3, 6});  // --eval-every 3 kept
  fs::remove_all(dir);
}

TEST_CASE("cli: checkpoints are step folders, --keep-last prunes all but the newest and the best one") {
  fs::path dir = setup_run_inputs(scratch("keep"));
  Result r = avey(dir, train_flags(dir, "run", 8) + " --save-every 1 --keep-last 2 --eval-every 2");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::vector<std::string> folders;
  for (const auto& e : fs::directory_iterator(dir / "run"))
    if (e.is_directory()) folders.push_back(e.path().filename().string());
  std::sort(folders.begin(), folders.end());
  std::string best;
  std::getline(std::ifstream(dir / "run/best"), best);
  CHECK(latest(dir / "run").filename() == "step-00000008");
  std::vector<std::string> expected = {"step-00000007", "step-00000008"};
  if (best != "step-00000008" && best != "step-00000007") expected.insert(expected.begin(), best);
  CHECK(folders == expected);
  // The best is the evaluated step with the lowest validation loss.
  double lowest = INFINITY;
  int64_t lowest_step = 0;
  std::ifstream metrics(dir / "run/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);)
    if (auto at = line.find("\"val_loss\":"); at != std::string::npos) {
      double v = std::stod(line.substr(at + 11));
      if (v < lowest) lowest = v, lowest_step = std::stoll(line.substr(line.find("\"step\":") + 7));
    }
  CHECK(best == fmt::format("step-{:08}", lowest_step));
  fs::remove_all(dir);
}

TEST_CASE("cli: --resume reuses the run's report flags, and keeps new ones given") {
  fs::path dir = setup_run_inputs(scratch("flags-kept"));
  REQUIRE(avey(dir, train_flags(dir, "run", 8) + " --save-every 2 --stop-at 2").code == 0);
  Result r = avey(dir, "train --resume --device cpu --out run --stop-at 5");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  // --eval-every 3, and --save-every 2 (a scheduled checkpoint is evaluated too)
  CHECK(evaluated_steps(dir / "run/metrics.jsonl") == std::vector<int64_t>{2, 3, 4});
  CHECK(fs::exists(dir / "run/step-00000004"));
  r = avey(dir, "train --resume --device cpu --out run --save-every 1 --stop-at 6");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp(dir / "run/run.json").find("\"save-every\": 1") != std::string::npos);
  r = avey(dir, "train --resume --device cpu --out run --lr 0.5");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --lr cannot change on --resume (the run has 0.001)\n");
  fs::remove_all(dir);
}

TEST_CASE("cli: bad flags are one clear line and exit code 2") {
  fs::path dir = setup_run_inputs(scratch("flags"));
  Result r = avey(dir, "train --bogus 3");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: unknown flag --bogus (see avey train --help)\n");
  r = avey(dir, "train --max-steps ten");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --max-steps expects an integer, got 'ten'\n");
  r = avey(dir, train_flags(dir, "run") + " --clip nan");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --clip must be a finite number, got nan\n");
  r = avey(dir, train_flags(dir, "run") + " --lr -1");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --lr must be >= 0, got -1\n");
  r = avey(dir, train_flags(dir, "run") + " --batch-size 4000000000 --seq-len 4000000000");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK_FALSE(fs::exists(dir / "run"));
  r = avey(dir, "frobnicate");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  fs::remove_all(dir);
}

TEST_CASE("cli: a config whose sizes overflow is one clear line, not a crash") {
  fs::path dir = setup_run_inputs(scratch("overflow"));
  std::ofstream(dir / "huge.json") << R"({"vocab_size": 9223372036854775807, "d_embed": 4611686018427387904})";
  std::ofstream(dir / "wide.json") << R"({"split_size": 4294967296, "top_k": 7})";
  for (const char* cfg : {"huge.json", "wide.json"}) {
    Result r = avey(dir, std::string("info --config ") + cfg);
    CHECK(r.code == 1);
    CHECK(lines(r.err) == 1);
    CHECK(r.err.find("at most 2^53") != std::string::npos);
    r = avey(dir, std::string("train --device cpu --tokenizer bytes --data text.txt --out run --config ") + cfg);
    CHECK(r.code == 1);
    CHECK(lines(r.err) == 1);
  }
  CHECK_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("cli: a wrong vocabulary is refused before anything runs") {
  fs::path dir = setup_run_inputs(scratch("vocab"));
  std::ofstream(dir / "small-vocab.json") << R"({"vocab_size": 100, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  Result r = avey(dir, "train --config small-vocab.json --tokenizer bytes --data text.txt --out run");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("tokenizer bytes has 257 ids but the model's vocab_size is 100") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("cli: a corrupt checkpoint is one clear error naming the file, and is left as it was") {
  fs::path dir = setup_run_inputs(scratch("corrupt"));
  REQUIRE(avey(dir, train_flags(dir, "run")).code == 0);
  const fs::path weights = latest(dir / "run") / "model.safetensors";
  std::string bytes = slurp(weights);
  bytes[bytes.size() / 2] ^= 1;  // one flipped bit in the data: only the checksum sees it
  std::ofstream(weights, std::ios::binary | std::ios::trunc) << bytes;
  Result r = avey(dir, "generate --device cpu --checkpoint run --max-new-tokens 4");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("model.safetensors: ") != std::string::npos);
  CHECK(r.err.find("the checkpoint is damaged") != std::string::npos);
  r = avey(dir, "train --resume --device cpu --out run");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(slurp(weights) == bytes);  // nothing overwritten
  // A damaged train_state.json names itself and the key.
  const fs::path state = latest(dir / "run") / "train_state.json";
  std::string text = slurp(state);
  text.replace(text.rfind("\"step\": 6"), 9, "\"step\": 6.5");  // the last: the top-level key
  std::ofstream(state, std::ios::trunc) << text;
  r = avey(dir, "eval --device cpu --checkpoint run --data text.txt --seq-len 32 --max-batches 1");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("train_state.json: key 'step': expected an integer, got 6.5") != std::string::npos);
  std::ofstream(state, std::ios::trunc) << "{\"step\": ";
  r = avey(dir, "train --resume --device cpu --out run");
  CHECK(r.err.find("train_state.json: not valid JSON") != std::string::npos);
  // An existing run is never overwritten by a new one.
  r = avey(dir, train_flags(dir, "run"));
  CHECK(r.code == 2);
  CHECK(r.err.find("already holds a run") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: a resumed run refuses data that changed since it started") {
  fs::path dir = setup_run_inputs(scratch("data-changed"));
  REQUIRE(avey(dir, train_flags(dir, "run") + " --stop-at 2").code == 0);
  std::ofstream(dir / "text.txt", std::ios::app) << "one more line\n";
  Result r = avey(dir, "train --resume --device cpu --out run");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("the data changed since the run started") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: a NaN loss stops training with one line, keeping the last good checkpoint") {
  fs::path dir = setup_run_inputs(scratch("nan"));
  // A learning rate this large blows the weights up within a few steps.
  Result r = avey(dir, train_flags(dir, "run") + " --lr 1e30 --save-every 1 --clip 0 --max-steps 6");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  const bool refused = r.err.find("refusing to save") != std::string::npos;
  CHECK((r.err.find("became non-finite at step") != std::string::npos || refused));
  // Every checkpoint left behind holds finite weights and loads.
  for (const auto& e : fs::directory_iterator(dir / "run"))
    if (e.is_directory())
      for (auto& [name, t] : engine::load_safetensors((e.path() / "model.safetensors").string()))
        for (float x : t.to_vector<float>()) REQUIRE_MESSAGE(std::isfinite(x), e.path() << " " << name);
  if (fs::exists(dir / "run/latest")) {
    Result ev = avey(dir, "eval --device cpu --checkpoint run --data text.txt --seq-len 32 --max-batches 1");
    CHECK_MESSAGE(ev.code == 0, ev.err);
  }
  fs::remove_all(dir);
}

TEST_CASE("cli: --init-from starts a new run from another folder's weights and config") {
  fs::path dir = setup_run_inputs(scratch("init-from"));
  REQUIRE(avey(dir, train_flags(dir, "a")).code == 0);
  // A learning rate of 0 leaves the weights as they came.
  Result r = avey(dir, "train --init-from a --data text.txt --device cpu --batch-size 2 --seq-len 32 --max-steps 1 "
                       "--lr 0 --sample-every 0 --out b");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  auto wa = engine::load_safetensors((latest(dir / "a") / "model.safetensors").string());
  auto wb = engine::load_safetensors((latest(dir / "b") / "model.safetensors").string());
  REQUIRE(wa.size() == wb.size());
  for (auto& [name, t] : wa) CHECK(t.to_vector<float>() == wb.at(name).to_vector<float>());
  CHECK(slurp(dir / "b/run.json").find("\"tokenizer\": \"bytes\"") != std::string::npos);  // the folder's tokenizer
  r = avey(dir, "train --init-from a --config tiny.json --out c");
  CHECK(r.code == 2);
  CHECK(r.err == "avey train: --config and --init-from both name the model; give one\n");
  // A folder laid out as an older avey wrote runs (one checkpoint at the top) is not trained over.
  fs::copy(latest(dir / "a"), dir / "older");
  r = avey(dir, train_flags(dir, "older"));
  CHECK(r.code == 2);
  CHECK(r.err.find("holds a run of an older avey (no run.json)") != std::string::npos);
  r = avey(dir, "train --init-from older --data text.txt --device cpu --batch-size 2 --seq-len 32 --max-steps 1 "
                "--sample-every 0 --out d");
  CHECK_MESSAGE(r.code == 0, r.err);
  fs::remove_all(dir);
}

TEST_CASE("cli: generate stops at end-of-text, the same seed gives the same text") {
  fs::path dir = scratch("eot");
  std::ofstream(dir / "tiny.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 1, "split_size": 4, "top_k": 1})";
  fs::create_directories(dir / "docs");
  for (int i = 0; i < 300; ++i) std::ofstream(dir / "docs" / (std::to_string(i) + ".txt")) << "ab";  // eot a b eot a b ...
  Result r = avey(dir, "train --config tiny.json --tokenizer bytes --data docs --device cpu --batch-size 4 --seq-len 24 "
                       "--max-steps 150 --lr 1e-2 --eval-every 0 --sample-every 0 --out run");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  r = avey(dir, "generate --device cpu --checkpoint run --prompt ab --temperature 0 --max-new-tokens 20");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == "ab\n");  // the greedy next token after "ab" is end-of-text
  r = avey(dir, "generate --device cpu --checkpoint run --prompt ab --temperature 0 --max-new-tokens 5 --ignore-eot");
  CHECK(r.out.size() > 3);
  Result a = avey(dir, "generate --device cpu --checkpoint run --prompt a --max-new-tokens 30 --ignore-eot --top-p 0.9 --seed 5");
  Result b = avey(dir, "generate --device cpu --checkpoint run --prompt a --max-new-tokens 30 --ignore-eot --top-p 0.9 --seed 5");
  CHECK(a.out == b.out);
  r = avey(dir, "generate --device cpu --checkpoint run --top-p 0");
  CHECK(r.code == 2);
  CHECK(r.err == "avey generate: --top-p must be in (0, 1]\n");
  fs::remove_all(dir);
}

TEST_CASE("cli: export --to hf, then every command reads the exported folder with the same results") {
  fs::path dir = setup_run_inputs(scratch("export"));
  std::ofstream(dir / "first.json")
      << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 2, "split_size": 8, "top_k": 2, "ranker_weight_norm": "first"})";
  REQUIRE(avey(dir, "train --config first.json --tokenizer bytes --data text.txt --device cpu --batch-size 2 --seq-len 32 "
                    "--max-steps 4 --eval-every 0 --sample-every 0 --out run").code == 0);
  Result r = avey(dir, "export --to hf --checkpoint run --out hf");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string config = slurp(dir / "hf/config.json");
  for (const char* key : {"\"model_type\": \"avey\"", "\"n_blocks\": 2", "\"chunk_size\": 8", "\"k\": 3",
                          "\"context_proportion\": 0.5", "\"extended_len\": 24", "\"architectures\": [\n    \"Avey\""})
    CHECK_MESSAGE(config.find(key) != std::string::npos, key);
  std::map<std::string, std::string> meta;
  engine::load_safetensors((dir / "hf/model.safetensors").string(), &meta);
  CHECK(meta == std::map<std::string, std::string>{{"format", "pt"}});
  // The same logits, loss and gradients from the run and from the exported folder.
  std::ofstream(dir / "batch.json") << R"({"input_ids": [[67, 97, 108, 108, 32, 109, 101, 32, 73, 115, 104, 109, 97, 101, 108, 46, 32, 83, 111, 109]],
                                        "labels": [[97, 108, 108, 32, 109, 101, 32, 73, 115, 104, 109, 97, 101, 108, 46, 32, 83, 111, 109, -100]]})";
  for (const char* folder : {"run", "hf"}) {
    r = avey(dir, std::string("logits --checkpoint ") + folder + " --batch batch.json --out " + folder + "-logits.safetensors");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = avey(dir, std::string("grads --checkpoint ") + folder + " --batch batch.json --json");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    std::ofstream(dir / (std::string(folder) + "-grads.json")) << r.out;
  }
  auto la = engine::load_safetensors((dir / "run-logits.safetensors").string()).at("logits");
  auto lb = engine::load_safetensors((dir / "hf-logits.safetensors").string()).at("logits");
  CHECK(la.shape() == engine::Shape{1, 20, 260});
  CHECK(la.to_vector<float>() == lb.to_vector<float>());
  CHECK(slurp(dir / "run-grads.json") == slurp(dir / "hf-grads.json"));
  // The same as --config with --weights.
  r = avey(dir, "grads --config first.json --weights hf/model.safetensors --batch batch.json --json");
  CHECK(r.out == slurp(dir / "hf-grads.json"));
  r = avey(dir, "generate --device cpu --checkpoint hf --prompt Call --max-new-tokens 8 --temperature 0");
  CHECK(r.out == avey(dir, "generate --device cpu --checkpoint run --prompt Call --max-new-tokens 8 --temperature 0").out);
  // The default ranker normalisation is one the reference's code does not compute.
  REQUIRE(avey(dir, train_flags(dir, "max")).code == 0);
  r = avey(dir, "export --checkpoint max --out hf2");
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("ranker_weight_norm 'first'") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "hf2"));
  r = avey(dir, "export --checkpoint run --out hf");
  CHECK(r.code == 2);
  CHECK(r.err.find("already exists") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: an Avey-B run exports to the encoder's reference folder, with the same logits") {
  fs::path dir = setup_run_inputs(scratch("export-encoder"));
  std::ofstream(dir / "enc.json") << R"({"model": "avey-b", "vocab_size": 260, "mask_id": 257, "d_embed": 16,
                                         "n_layers": 2, "split_size": 8, "top_k": 2, "seq_len": 32})";
  REQUIRE(avey(dir, "train --config enc.json --tokenizer bytes --data text.txt --device cpu --batch-size 2 --max-steps 3 "
                    "--eval-every 0 --sample-every 0 --out run").code == 0);
  Result r = avey(dir, "export --checkpoint run --out hf");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string config = slurp(dir / "hf/config.json");
  for (const char* key : {"\"model_type\": \"avey-b\"", "\"n_layers\": 2", "\"k\": 2", "\"mask_token_id\": 257"})
    CHECK_MESSAGE(config.find(key) != std::string::npos, key);
  std::ofstream(dir / "batch.json") << R"({"input_ids": [[67, 257, 108, 108, 32, 109, 101, 257, 73, 115]],
                                        "labels": [[-100, 97, -100, -100, -100, -100, -100, 32, -100, -100]]})";
  for (const char* folder : {"run", "hf"})
    REQUIRE(avey(dir, std::string("logits --checkpoint ") + folder + " --batch batch.json --out " + folder + ".st").code == 0);
  CHECK(engine::load_safetensors((dir / "run.st").string()).at("logits").to_vector<float>() ==
        engine::load_safetensors((dir / "hf.st").string()).at("logits").to_vector<float>());
  r = avey(dir, "generate --device cpu --checkpoint hf");
  CHECK(r.code == 2);
  CHECK(r.err.find("holds an avey-b encoder") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: score gives acc and acc_norm on a task file") {
  fs::path dir = setup_run_inputs(scratch("score"));
  REQUIRE(avey(dir, train_flags(dir, "run", 30)).code == 0);
  std::ofstream(dir / "tasks.jsonl") << R"({"context": "Call me", "choices": ["Ishmael.", "zzqx"], "gold": 0, "task": "a"}
{"context": "Some years", "choices": ["xq", "ago, never"], "gold": 1, "task": "a"}

{"context": "never mind how long", "choices": ["precisely.", "qqqqqqqq"], "gold": 0, "task": "b"}
)";
  Result r = avey(dir, "score --device cpu --checkpoint run --tasks tasks.jsonl --json");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["a"]["n"] == 2);
  CHECK(j["b"]["n"] == 1);
  CHECK(j["all"]["n"] == 3);
  CHECK(j["b"]["acc_stderr"].is_null());
  for (auto& [task, s] : j.items()) {
    CHECK(s["acc"].get<double>() >= 0);
    CHECK(s["acc_norm"].get<double>() <= 1);
  }
  std::ofstream(dir / "bad.jsonl") << R"({"context": "x", "choices": ["a"], "gold": 3})";
  r = avey(dir, "score --device cpu --checkpoint run --tasks bad.jsonl");
  CHECK(r.code == 1);
  CHECK(r.err.find("bad.jsonl line 1: key 'gold': 3 is not the index of one of the 1 choices") != std::string::npos);
  fs::remove_all(dir);
}
