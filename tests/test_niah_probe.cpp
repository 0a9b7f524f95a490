// The needle probe of `avey train --niah-probe N` (cli/niah_probe.h): its documents, its scores
// against the same scores computed here from the full logits, and the flag as a user meets it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "avey/model.h"
#include "cli/niah_probe.h"
#include "data/data_dir.h"
#include "engine/autograd.h"
#include "tests/cli_testing.h"

using namespace cli_testing;

TEST_CASE("niah probe: passkey documents shorter than T, scored as the arg-max of their answer's rows") {
  auto tok = data::load_tokenizer("p50k");
  const NiahProbe probe = make_niah_probe(*tok, 128, 6);
  REQUIRE(probe.documents.size() == 6);
  CHECK(make_niah_probe(*tok, 128, 6).documents == probe.documents);  // the same at every evaluation
  for (size_t i = 0; i < 6; ++i) {
    CHECK(probe.documents[i].size() <= 127);
    const std::string answer = tok->decode(std::vector<int32_t>(probe.documents[i].end() - probe.answer_tokens[i],
                                                                probe.documents[i].end()));
    CHECK(tok->decode(probe.documents[i]).ends_with("\nThe pass key is" + answer));
  }

  avey::Config cfg;
  cfg.d_embed = 16, cfg.n_layers = 1, cfg.split_size = 16, cfg.top_k = 2, cfg.vocab_size = 50304;
  avey::Model model(cfg, engine::Device::CPU, engine::DType::F32);
  model.init(3);
  const ProbeScore s = score_niah_probe(model, probe);
  // by hand: each document's whole logits, the arg-max of its last answer_tokens rows
  engine::NoGrad no_grad;
  int64_t right = 0, total = 0, exact = 0;
  for (size_t i = 0; i < 6; ++i) {
    const std::vector<int32_t>& ids = probe.documents[i];
    const int64_t n = int64_t(ids.size()) - 1, a = probe.answer_tokens[i], V = cfg.vocab_size;
    const std::vector<float> lg =
        model.logits(engine::Tensor::from(std::vector<int32_t>(ids.begin(), ids.end() - 1), {1, n})).to_vector<float>();
    int64_t doc_right = 0;
    for (int64_t r = n - a; r < n; ++r) {
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v) best = lg[size_t(r * V + v)] > lg[size_t(r * V + best)] ? v : best;
      doc_right += best == ids[size_t(r + 1)];
    }
    right += doc_right, total += a, exact += doc_right == a;
  }
  CHECK(s.token_accuracy == doctest::Approx(double(right) / double(total)));
  CHECK(s.exact == doctest::Approx(double(exact) / 6.0));
}

TEST_CASE("niah probe: avey train --niah-probe logs the scores at each evaluation") {
  fs::path dir = scratch("niah-probe");
  std::ofstream(dir / "toy.json") << R"({"d_embed": 16, "n_layers": 1, "split_size": 16, "top_k": 2})";
  const std::string base = "train --config " + (dir / "toy.json").string() +
                           " --seq-len 128 --batch-size 2 --max-steps 2 --eval-every 1 --eval-batches 1"
                           " --sample-every 0 --save-every 0 --device cpu --niah-probe 3 --out ";
  Result r = cli_testing::avey(dir, base + (dir / "run").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("| passkey ") != std::string::npos);
  int evaluations = 0;
  std::istringstream metrics(slurp(dir / "run" / "metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json m = nlohmann::json::parse(line);
    if (!m.contains("val_loss")) continue;
    ++evaluations;
    REQUIRE(m.contains("niah_probe_exact"));
    CHECK(m["niah_probe_token_accuracy"].get<double>() >= 0);
    CHECK(m["niah_probe_token_accuracy"].get<double>() <= 1);
  }
  CHECK(evaluations == 2);
  r = cli_testing::avey(dir, base + (dir / "short").string() + " --seq-len 8");
  CHECK(r.code != 0);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("--seq-len 8") != std::string::npos);
  r = cli_testing::avey(dir, "train --config avey-b-tiny --niah-probe 2 --max-steps 1 --device cpu --out " + (dir / "b").string());
  CHECK(r.code != 0);
  CHECK(r.err.find("--niah-probe") != std::string::npos);
  fs::remove_all(dir);
}
