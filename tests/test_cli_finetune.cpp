// avey task, finetune and predict end to end on a small Avey-B (d 16): the needle test and a
// sequence task, the grid's table with its majority baseline, the fine-tuned folder in the
// reference's layout read back by predict, and one clear error line for bad input.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "data/data_dir.h"
#include "engine/safetensors.h"
#include "tests/cli_testing.h"

using namespace cli_testing;

namespace {

bool have_p50k() { return fs::exists(data::data_dir() + "/p50k_base.tiktoken"); }

fs::path tiny_encoder(const fs::path& dir) {
  std::ofstream(dir / "b.json") << R"({"model": "avey-b", "vocab_size": 50368, "d_embed": 16, "n_layers": 2, "chunk_size": 8, "k": 2, "seq_len": 96})";
  return dir / "b.json";
}

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("cli finetune: the needle test, a grid of two rates and two seeds, and predict on the best folder") {
  if (!have_p50k()) return;
  const fs::path dir = scratch("finetune-needle");
  Result t = avey(dir, "task --name needle --words 40 --train 48 --eval 8 --out " + (dir / "needle").string());
  REQUIRE(t.code == 0);
  CHECK(t.out.find("train.jsonl: 48 examples") != std::string::npos);
  Result t2 = avey(dir, "task --name needle --out " + (dir / "needle").string());  // never over a task
  CHECK(t2.err == "avey task: " + (dir / "needle").string() + " already holds a task (train.jsonl); choose another --out\n");
  const std::string run = "finetune --task " + (dir / "needle").string() + " --config " + tiny_encoder(dir).string() +
                          " --lr 1e-3,3e-3 --seeds 0,1 --batch-size 16 --micro-batch 8 --device cpu --out " + (dir / "r").string();
  Result f = avey(dir, run);
  CAPTURE(f.err);
  REQUIRE(f.code == 0);
  const std::string table = slurp(dir / "r/results.md");
  CHECK(table.find("| learning rate | seeds | val token-set F1 |") != std::string::npos);
  CHECK(table.find("| 0.001 | 2 |") != std::string::npos);
  CHECK(table.find("| 0.003 | 2 |") != std::string::npos);
  CHECK(table.find("| majority baseline | - |") != std::string::npos);
  CHECK(count_lines(slurp(dir / "r/runs.jsonl")) == 4);
  const nlohmann::json cfg = nlohmann::json::parse(slurp(dir / "r/best/config.json"));
  CHECK(cfg["architectures"] == nlohmann::json::array({"AveyForTokenClassification"}));
  CHECK(cfg["model_type"] == "avey-b");
  CHECK(cfg["num_labels"] == 2);
  CHECK(cfg["id2label"] == nlohmann::json{{"0", "O"}, {"1", "answer"}});
  CHECK(cfg["chunk_size"] == 8);
  CHECK(cfg["k"] == 2);
  CHECK(cfg["max_position_embeddings"] == 96);
  const auto tensors = engine::load_safetensors((dir / "r/best/model.safetensors").string());
  CHECK(tensors.count("classifier.weight") == 1);
  CHECK(tensors.at("dense.0.weight").shape() == engine::Shape{16, 16});
  CHECK(tensors.count("ranker.down_proj") == 1);
  // the same --out again: refused, the results kept
  Result again = avey(dir, run);
  CHECK(again.code == 2);
  CHECK(again.err == "avey finetune: " + (dir / "r").string() + " already holds results (runs.jsonl); choose another --out\n");
  CHECK(count_lines(slurp(dir / "r/runs.jsonl")) == 4);

  Result p = avey(dir, "predict --model " + (dir / "r/best").string() + " --input " + (dir / "needle/test.jsonl").string() +
                           " --device cpu --logits-out " + (dir / "logits.json").string());
  REQUIRE(p.code == 0);
  CHECK(count_lines(p.out) == 8);
  const nlohmann::json first = nlohmann::json::parse(p.out.substr(0, p.out.find('\n')));
  CHECK(first.contains("spans"));
  const nlohmann::json logits = nlohmann::json::parse(slurp(dir / "logits.json"));
  REQUIRE(logits["examples"].size() == 8);
  const auto& ex = logits["examples"][0];
  CHECK(ex["logits"].size() == 2 * ex["input_ids"][0].size());  // [T, 2] per example
}

TEST_CASE("cli finetune: a sequence task, predict on new text, and one clear error line for bad input") {
  if (!have_p50k()) return;
  const fs::path dir = scratch("finetune-seq");
  fs::create_directories(dir / "t");
  std::ofstream train(dir / "t/train.jsonl"), val(dir / "t/val.jsonl");
  for (int i = 0; i < 24; ++i) {
    train << nlohmann::json{{"text", i % 3 ? "Call me Ishmael." : "WIN A FREE PRIZE NOW!!!"}, {"label", i % 3 ? "ham" : "spam"}}.dump() << "\n";
    if (i < 6) val << nlohmann::json{{"text", i % 2 ? "Some years ago." : "FREE MONEY!!!"}, {"label", i % 2 ? "ham" : "spam"}}.dump() << "\n";
  }
  train.close(), val.close();
  Result f = avey(dir, "finetune --task " + (dir / "t").string() + " --config " + tiny_encoder(dir).string() +
                           " --lr 1e-3 --batch-size 8 --epochs 2 --device cpu --out " + (dir / "r").string());
  CAPTURE(f.err);
  REQUIRE(f.code == 0);
  CHECK(slurp(dir / "r/results.md").find("| learning rate | seeds | val accuracy |") != std::string::npos);
  const nlohmann::json cfg = nlohmann::json::parse(slurp(dir / "r/best/config.json"));
  CHECK(cfg["architectures"] == nlohmann::json::array({"AveyForSequenceClassification"}));
  CHECK(cfg["id2label"] == nlohmann::json{{"0", "ham"}, {"1", "spam"}});
  CHECK(cfg["problem_type"] == "single_label_classification");
  Result p = avey(dir, "predict --model " + (dir / "r/best").string() + " --text \"Hello there\" --device cpu");
  REQUIRE(p.code == 0);
  const nlohmann::json line = nlohmann::json::parse(p.out);
  CHECK((line["label"] == "ham" || line["label"] == "spam"));
  CHECK(double(line["probabilities"]["ham"]) + double(line["probabilities"]["spam"]) == doctest::Approx(1.0));
  // predict on the validation file labels each example as the run's scoring did: the same accuracy
  Result pv = avey(dir, "predict --model " + (dir / "r/best").string() + " --input " + (dir / "t/val.jsonl").string() + " --device cpu");
  REQUIRE(pv.code == 0);
  std::istringstream predicted(pv.out), truth(slurp(dir / "t/val.jsonl"));
  std::string p_line, t_line;
  int right = 0, n = 0;
  while (std::getline(predicted, p_line) && std::getline(truth, t_line))
    right += nlohmann::json::parse(p_line)["label"] == nlohmann::json::parse(t_line)["label"], ++n;
  CHECK(n == 6);
  const nlohmann::json results = nlohmann::json::parse(slurp(dir / "r/results.json"));
  CHECK(double(right) / n == doctest::Approx(double(results["runs"][0]["val"]["accuracy"])));

  // the byte tokenizer (no data files), then a fine-tuned folder as the next run's encoder: it keeps
  // the folder's tokenizer and encoder tensors, and takes a new head
  Result fb = avey(dir, "finetune --task " + (dir / "t").string() + " --config " + tiny_encoder(dir).string() +
                            " --tokenizer bytes --lr 1e-3 --batch-size 8 --device cpu --out " + (dir / "rb").string());
  REQUIRE(fb.code == 0);
  Result fi = avey(dir, "finetune --task " + (dir / "t").string() + " --init " + (dir / "rb/best").string() +
                            " --lr 1e-3 --batch-size 8 --device cpu --out " + (dir / "ri").string());
  CAPTURE(fi.err);
  REQUIRE(fi.code == 0);
  CHECK(nlohmann::json::parse(slurp(dir / "ri/best/config.json"))["avey_tokenizer"] == "bytes");
  const auto before = engine::load_safetensors((dir / "rb/best/model.safetensors").string());
  const auto after = engine::load_safetensors((dir / "ri/best/model.safetensors").string());
  CHECK(before.at("embed.weight").to_vector<float>() != after.at("embed.weight").to_vector<float>());  // trained on
  CHECK(after.size() == before.size());

  // bad input: one line each
  fs::create_directories(dir / "bad");
  std::ofstream(dir / "bad/train.jsonl") << R"({"text": "x", "label": "a"})" << "\n" << R"({"text": 3, "label": "b"})" << "\n";
  const std::string cfg_flag = " --config " + tiny_encoder(dir).string() + " --device cpu";
  Result bad = avey(dir, "finetune --task " + (dir / "bad").string() + cfg_flag + " --out " + (dir / "r2").string());
  CHECK(bad.code == 1);
  CHECK(bad.err == "avey finetune: error: " + (dir / "bad/train.jsonl").string() + ":2: 'text' must be a string, got 3\n");
  Result lr = avey(dir, "finetune --task " + (dir / "t").string() + cfg_flag + " --lr fast --out " + (dir / "r3").string());
  CHECK(lr.err == "avey finetune: --lr takes numbers, got 'fast'\n");
  Result missing = avey(dir, "finetune --out " + (dir / "r4").string());
  CHECK(missing.err == "avey finetune: --task DIR and --out DIR are required\n");
  Result not_ft = avey(dir, "predict --model " + (dir / "t").string() + " --text hi");
  CHECK(not_ft.code == 1);
  CHECK(lines(not_ft.err) == 1);
  CHECK(not_ft.err.find("config.json") != std::string::npos);
  // a reference folder without a head (the masked LM's class): predict says so on one line
  fs::create_directories(dir / "mlm");
  nlohmann::json mlm = nlohmann::json::parse(slurp(dir / "r/best/config.json"));
  mlm["architectures"] = {"AveyForMaskedLM"};
  std::ofstream(dir / "mlm/config.json") << mlm.dump();
  fs::copy_file(dir / "r/best/model.safetensors", dir / "mlm/model.safetensors");
  Result no_head = avey(dir, "predict --model " + (dir / "mlm").string() + " --text hi --device cpu");
  CHECK(no_head.code == 1);
  CHECK(lines(no_head.err) == 1);
  CHECK(no_head.err.find("no fine-tuning head") != std::string::npos);
  Result decoder = avey(dir, "finetune --task " + (dir / "t").string() + " --config tiny --out " + (dir / "r5").string());
  CHECK(decoder.err == "avey finetune: heads sit on Avey-B; --config must be an avey-b model\n");
}

TEST_CASE("cli finetune: a word task, and predict splits --text into words as the entities task does") {
  if (!have_p50k()) return;
  const fs::path dir = scratch("finetune-words");
  fs::create_directories(dir / "t");
  std::ofstream train(dir / "t/train.jsonl");
  for (int i = 0; i < 16; ++i)
    train << nlohmann::json{{"tokens", {"Call", "me", "Ishmael", "."}}, {"labels", {"O", "O", "B-PER", "O"}}}.dump() << "\n";
  train.close();
  Result f = avey(dir, "finetune --task " + (dir / "t").string() + " --config " + tiny_encoder(dir).string() +
                           " --lr 1e-3 --batch-size 8 --device cpu --out " + (dir / "r").string());
  CAPTURE(f.err);
  REQUIRE(f.code == 0);
  CHECK(nlohmann::json::parse(slurp(dir / "r/best/config.json"))["avey_task"] == "token (words)");
  Result p = avey(dir, "predict --model " + (dir / "r/best").string() + " --text \"Call me, Ishmael.\" --device cpu");
  REQUIRE(p.code == 0);
  const nlohmann::json line = nlohmann::json::parse(p.out);
  CHECK(line["tokens"] == nlohmann::json{"Call", "me", ",", "Ishmael", "."});
  REQUIRE(line["labels"].size() == 5);
  for (const auto& l : line["labels"]) CHECK((l == "O" || l == "B-PER"));
}
