// `avey needles` and `avey niah` as a user meets them, on a tiny CPU checkpoint trained for two
// steps on a mixed shard: the prompts the command fed the model (their token counts), the keys and
// needles of each sample, the scoring of each recorded output, the tables, heatmap and --resume.
// The model is untrained: what is checked is that the command measures and scores what it says.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/data_dir.h"
#include "data/niah_prompts.h"
#include "data/shard.h"
#include "tests/cli_testing.h"

using namespace cli_testing;
namespace niah = data::niah;

namespace {

const data::Tokenizer& p50k() {
  static auto tok = data::load_tokenizer("p50k");
  return *tok;
}

std::string chapter_1() { return data::data_dir() + "/moby-dick/chapter_1.txt"; }

// A mixed shard of chapter 1 and a two-step checkpoint trained on it.
fs::path trained_run(const std::string& name) {
  fs::path dir = scratch(name);
  std::ofstream(dir / "toy.json") << R"({"d_embed": 16, "n_layers": 1, "split_size": 16, "top_k": 2})";
  Result r = avey(dir, "needles --input " + chapter_1() + " --out " + (dir / "mix.bin").string() +
                           " --seq-len 128 --share 0.5");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("needle documents (passkey ") != std::string::npos);
  r = avey(dir, "train --config " + (dir / "toy.json").string() + " --data " + (dir / "mix.bin").string() +
                    " --seq-len 128 --batch-size 2 --max-steps 2 --eval-every 0 --eval-batches 1 --sample-every 0"
                    " --save-every 0 --device cpu --out " + (dir / "run").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return dir;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("cli niah: the mixed shard has the needle documents in whole windows") {
  fs::path dir = trained_run("niah-shard");
  data::Shard s = data::read_shard((dir / "mix.bin").string());
  CHECK(s.tokenizer == "p50k");
  REQUIRE(s.tokens.size() % 128 == 0);
  int64_t starts = 0;  // windows that start with end-of-text: a needle document or a chapter's start
  for (size_t w = 0; w < s.tokens.size(); w += 128) starts += s.tokens[w] == uint32_t(p50k().eot());
  CHECK(double(starts) / double(s.tokens.size() / 128) > 0.35);
  fs::remove_all(dir);
}

TEST_CASE("cli niah: passkey prompts, keys and scoring on a tiny CPU checkpoint, then --resume") {
  fs::path dir = trained_run("niah-passkey");
  const std::string base = "niah --checkpoint " + (dir / "run").string() + " --device cpu --samples 6 --depths 0,50,100";
  Result r = avey(dir, base + " --lengths 200,1000 --json " + (dir / "res/pk.json").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("| ETA ") != std::string::npos);
  CHECK(r.out.find("| depth | 200 | 1K |") != std::string::npos);

  const nlohmann::json j = read_json(dir / "res/pk.json");
  CHECK(j["settings"]["task"] == "passkey");
  CHECK(j["settings"]["step"] == 2);
  CHECK(j["memory"] == "peak RSS");
  const std::vector<std::string> keys = niah::passkeys(6, true, 11);
  CHECK(keys[0] == "2733");
  REQUIRE(j["cells"].size() == 6);
  for (const auto& cell : j["cells"]) {
    const int64_t L = cell["length"];
    const int depth = cell["depth"];
    CAPTURE(L);
    CAPTURE(depth);
    REQUIRE(cell["samples"].size() == 6);
    int right = 0;
    for (size_t i = 0; i < 6; ++i) {
      const auto& s = cell["samples"][i];
      CHECK(s["answer"] == keys[i]);  // the reference's five keys, then a draw
      const std::string prompt = niah::passkey_prompt(niah::passkey_chars(L), depth, keys[i]);
      CHECK(s["prompt_tokens"] == p50k().encode_ordinary(prompt).size());
      const std::string output = s["output"];
      CHECK(p50k().encode_ordinary(output).size() <= size_t(niah::passkey_new_tokens(p50k(), keys[i])));
      CHECK(s["correct"] == niah::passkey_correct(output, keys[i]));
      right += s["correct"].get<bool>();
    }
    CHECK(cell["accuracy"].get<double>() == doctest::Approx(100.0 * right / 6));
    CHECK(cell["seconds"].get<double>() > 0);
    CHECK(cell["peak_bytes"].get<int64_t>() > (1 << 20));
  }
  const std::string svg = slurp(dir / "res/pk.svg"), md = slurp(dir / "res/pk.md");
  CHECK(svg.starts_with("<svg"));
  CHECK(count(svg, "stroke-width=\"1.5\"") == 6);  // one square per cell
  CHECK(svg.find(">1K</text>") != std::string::npos);
  CHECK(md.find("| 50% |") != std::string::npos);
  CHECK(md.find("MiB |") != std::string::npos);
  // the answers table: each key's right answers over the 6 cells, as the JSON has them
  for (size_t i = 0; i < 6; ++i) {
    int right = 0;
    for (const auto& cell : j["cells"]) right += cell["samples"][i]["correct"].get<bool>();
    CHECK(md.find(fmt::format("| {} | {} / 6 | \"", keys[i], right)) != std::string::npos);
  }

  // --resume keeps the cells it has and adds the new length's; without it, or with other settings,
  // the results file is refused and left as it was.
  const std::string before = slurp(dir / "res/pk.json");
  r = avey(dir, base + " --lengths 200,1000,2000 --json " + (dir / "res/pk.json").string());
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  r = avey(dir, "niah --checkpoint " + (dir / "run").string() +
                    " --device cpu --samples 5 --depths 0,50,100 --lengths 200 --resume --json " +
                    (dir / "res/pk.json").string());
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK(slurp(dir / "res/pk.json") == before);
  r = avey(dir, base + " --lengths 200,1000,2000 --resume --json " + (dir / "res/pk.json").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const nlohmann::json k = read_json(dir / "res/pk.json");
  REQUIRE(k["cells"].size() == 9);
  for (size_t c = 0; c < 6; ++c) CHECK(k["cells"][c] == j["cells"][c]);
  CHECK(count(r.err, "% right") == 3);  // only the new length's cells ran
  fs::remove_all(dir);
}

TEST_CASE("cli niah: RULER prompts fill the length and score by substring") {
  fs::path dir = trained_run("niah-ruler");
  const std::vector<niah::Needle> needles = niah::needles(3, 11);
  for (const std::string task : {"sniah1", "sniah2"}) {
    CAPTURE(task);
    Result r = avey(dir, "niah --checkpoint " + (dir / "run").string() + " --device cpu --task " + task +
                             " --lengths 400 --depths 30 --samples 3 --haystack " + chapter_1() + " --json " +
                             (dir / (task + ".json")).string());
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const nlohmann::json j = read_json(dir / (task + ".json"));
    CHECK(j["settings"]["haystack"] == (task == "sniah2" ? chapter_1() : ""));
    REQUIRE(j["cells"].size() == 1);
    const auto& cell = j["cells"][0];
    int64_t new_tokens = 0;  // the value's tokens + 8, the most over the samples
    for (const auto& n : needles) new_tokens = std::max<int64_t>(new_tokens, p50k().encode_ordinary(n.value).size() + 8);
    for (size_t i = 0; i < 3; ++i) {
      const auto& s = cell["samples"][i];
      CHECK(s["answer"] == needles[i].value);
      const int64_t tokens = s["prompt_tokens"];
      CHECK(tokens <= 400 - new_tokens + 2);  // sized on the first needle: another may differ by a token or two
      CHECK(tokens > 400 - new_tokens - 30);  // within a line (sniah1) or a word (sniah2) of the budget
      CHECK(s["correct"] == niah::ruler_correct(s["output"].get<std::string>(), needles[i].value));
    }
  }
  Result r = avey(dir, "niah --checkpoint " + (dir / "run").string() + " --device cpu --task sniah1 --lengths 60 --json " +
                           (dir / "short.json").string());
  CHECK(r.code == 2);  // the template alone is longer than 60 tokens
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("too short") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli niah: bad input is one clear line") {
  fs::path dir = scratch("niah-flags");
  const std::string run = "niah --checkpoint " + (dir / "none").string() + " --json " + (dir / "r.json").string();
  for (const std::string& flags : {std::string(" --task haystack"), std::string(" --depths 10,x"),
                                   std::string(" --depths 120"), std::string(" --lengths 0"),
                                   std::string(" --samples 0"), std::string(" --keys mine")}) {
    Result r = avey(dir, run + flags);
    CAPTURE(flags);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
  }
  Result r = avey(dir, run);
  CHECK(r.code == 1);  // no checkpoint there
  CHECK(lines(r.err) == 1);
  CHECK_FALSE(fs::exists(dir / "r.json"));
  for (const std::string& flags : {std::string("needles --share 0.5"), std::string("needles --out x.bin --share 2"),
                                   std::string("needles --out x.bin --kinds passkey,maze")}) {
    r = avey(dir, flags);
    CAPTURE(flags);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
  }
  CHECK_FALSE(fs::exists(dir / "x.bin"));
  fs::remove_all(dir);
}

TEST_CASE("cli niah: the experiment's recipe runs end to end at toy scale, and a second run redoes nothing") {
  fs::path dir = scratch("niah-recipe");
  const std::string cmd = "cd " + std::string(AVEY_SOURCE_DIR) + " && AVEY=" + std::string(AVEY_BINARY_DIR) +
                          "/bin/avey NIAH_STEPS=2 NIAH_LENGTHS=256 NIAH_TASKS=passkey OMP_NUM_THREADS=1 "
                          "scripts/niah-experiment --smoke --out " + (dir / "exp").string() + " >" +
                          (dir / "log.txt").string() + " 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, slurp(dir / "log.txt"));
  const std::string report = slurp(dir / "exp/RESULTS.md");
  for (const char* part : {"| avey | configs/niah-smoke.json | 2 | 1024 |", "| ablation | configs/niah-smoke-ablation.json | 2 |",
                                  "## avey: passkey", "## ablation: passkey", "![avey passkey](avey-passkey.svg)",
                                  "| depth | 256 |", "| 90% |", "device cpu"})
    CHECK_MESSAGE(report.find(part) != std::string::npos, part);
  for (const char* file : {"avey-passkey.svg", "ablation-passkey.json", "avey-loss.svg", "mix.bin"})
    CHECK_MESSAGE(fs::exists(dir / "exp" / file), file);
  const std::string results = slurp(dir / "exp/avey-passkey.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string again = slurp(dir / "log.txt");
  CHECK(again.find("resuming") != std::string::npos);  // the finished runs are only saved again
  CHECK(again.find("% right") == std::string::npos);   // no cell evaluated again
  CHECK(nlohmann::json::parse(slurp(dir / "exp/avey-passkey.json"))["cells"] == nlohmann::json::parse(results)["cells"]);
  fs::remove_all(dir);
}
