// The `avey` command's data and evaluation as a user meets them: `avey eval` over a whole
// validation set (checked against a direct computation with the model), `avey prepare` on text
// folders and JSON lines, llm.c's shards, and data too small to train on. Runs the built binary.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "avey/config.h"
#include "avey/model.h"
#include "data/byte_tokenizer.h"
#include "data/paths.h"
#include "data/splits.h"
#include "data/token_stream.h"
#include "data/tokenized_files.h"
#include "data/tokenizer.h"
#include "engine/safetensors.h"
#include "tests/cli_testing.h"

namespace fs = std::filesystem;

// `avey` is also the model's namespace here: the helpers are called by their full names.
using cli_testing::Result;
using cli_testing::lines;
using cli_testing::scratch;
using cli_testing::setup_run_inputs;
using cli_testing::train_flags;
constexpr auto run_avey = cli_testing::avey;

TEST_CASE("cli: eval predicts every validation id once, loss, bits per byte and errors match a direct computation") {
  fs::path dir = setup_run_inputs(scratch("eval"));
  REQUIRE(run_avey(dir, train_flags(dir, "run")).code == 0);
  const int64_t T = 32;
  const std::string eval = "eval --device cpu --checkpoint " + (dir / "run").string() + " --data " + (dir / "text.txt").string() +
                           " --seq-len 32 --batch-size 3 --json";
  Result r = run_avey(dir, eval);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const nlohmann::json got = nlohmann::json::parse(r.out);

  // The same model, the same validation ids, one window at a time through Model::loss.
  const fs::path checkpoint = cli_testing::latest(dir / "run");
  avey::Model model(avey::load_config((checkpoint / "config.json").string()));
  model.load_state(engine::load_safetensors((checkpoint / "model.safetensors").string()));
  data::ByteTokenizer bytes;
  const data::TokenStream val = data::open_data((dir / "text.txt").string(), bytes, false).val;
  std::vector<double> nats, ids, text_nats, text_bytes;  // per window
  for (uint64_t at = 0; at + 1 < val.size(); at += T) {
    const int64_t len = std::min<int64_t>(T, int64_t(val.size() - 1 - at));
    std::vector<uint32_t> w = val.read(at, uint64_t(len) + 1);
    std::vector<int32_t> in(w.begin(), w.end() - 1), labels(w.begin() + 1, w.end()), text = labels;
    int64_t n_text = 0;
    for (int32_t& t : text) n_text += t == 256 ? (t = -100, 0) : 1;  // end-of-text has no bytes
    auto loss = [&](const std::vector<int32_t>& y) {
      return model.loss(engine::Tensor::from(in, {1, len}), engine::Tensor::from(y, {1, len})).item();
    };
    nats.push_back(loss(labels) * double(len));
    ids.push_back(double(len));
    text_nats.push_back(n_text ? loss(text) * double(n_text) : 0.0);
    text_bytes.push_back(double(n_text));
  }
  auto ratio = [](const std::vector<double>& a, const std::vector<double>& b) {
    double sa = 0, sb = 0, ss = 0, W = double(a.size());
    for (size_t i = 0; i < a.size(); ++i) sa += a[i], sb += b[i];
    for (size_t i = 0; i < a.size(); ++i) ss += std::pow(a[i] - sa / sb * b[i], 2);
    return std::pair{sa / sb, std::sqrt(ss / (W * (W - 1))) / (sb / W)};
  };
  auto [loss, loss_se] = ratio(nats, ids);
  auto [bpb, bpb_se] = ratio(text_nats, text_bytes);
  CHECK(got["tokens"].get<int64_t>() == int64_t(val.size()) - 1);
  CHECK(got["windows"].get<size_t>() == nats.size());
  CHECK((val.size() - 1) % T != 0);  // the last window is a shorter one
  CHECK(got["bytes"].get<double>() == std::accumulate(text_bytes.begin(), text_bytes.end(), 0.0));
  CHECK(got["loss"].get<double>() == doctest::Approx(loss).epsilon(1e-5));
  CHECK(got["loss_se"].get<double>() == doctest::Approx(loss_se).epsilon(1e-3));
  CHECK(got["bpb"].get<double>() == doctest::Approx(bpb / std::log(2.0)).epsilon(1e-5));
  CHECK(got["bpb_se"].get<double>() == doctest::Approx(bpb_se / std::log(2.0)).epsilon(1e-3));
  CHECK(got["perplexity"].get<double>() == doctest::Approx(std::exp(loss)).epsilon(1e-5));
  CHECK(got["loss_se"].get<double>() > 0);

  // --max-batches 0 is the whole set; a budget takes that many batches of windows.
  CHECK(run_avey(dir, eval + " --max-batches 0").out == r.out);
  Result some = run_avey(dir, eval + " --max-batches 2");
  REQUIRE_MESSAGE(some.code == 0, some.err);
  CHECK(nlohmann::json::parse(some.out)["windows"] == 6);
  CHECK(nlohmann::json::parse(some.out)["tokens"] == 6 * T);
  Result text = run_avey(dir, "eval --device cpu --checkpoint " + (dir / "run").string() + " --data " + (dir / "text.txt").string() +
                              " --seq-len 32");
  CHECK(text.out.find("validation loss " + fmt::format("{:.4f}", loss) + " ± ") != std::string::npos);
  CHECK(text.out.find(" bits per byte | ") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: eval refuses sizes that make no sense with one line") {
  fs::path dir = setup_run_inputs(scratch("eval-flags"));
  REQUIRE(run_avey(dir, train_flags(dir, "run")).code == 0);
  const std::string eval = "eval --device cpu --checkpoint " + (dir / "run").string() + " --data " + (dir / "text.txt").string();
  for (auto [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {" --seq-len 0", "avey eval: --seq-len must be at least 1\n"},
           {" --batch-size 0", "avey eval: --batch-size must be at least 1\n"},
           {" --max-batches -1", "avey eval: --max-batches must be 0 (the whole set) or more\n"}}) {
    Result r = run_avey(dir, eval + flags);
    CHECK(r.code == 2);
    CHECK(r.err == message);
  }
  fs::remove_all(dir);
}

TEST_CASE("cli: prepare tokenises folders and JSON lines into one shard or many, the same ids either way") {
  fs::path dir = scratch("prepare");
  fs::create_directories(dir / "texts/more");
  std::ofstream(dir / "texts/a.txt") << std::string(3000, 'a') << " end";
  std::ofstream(dir / "texts/more/b.jsonl") << "{\"text\": \"first line document\"}\n\n{\"text\": \"second\"}\n";
  std::ofstream(dir / "texts/c.md") << "not read";
  const std::string input = " --tokenizer bytes --input " + (dir / "texts").string();
  Result one = run_avey(dir, "prepare" + input + " --out " + (dir / "one.bin").string());
  REQUIRE_MESSAGE(one.code == 0, one.err);
  Result many = run_avey(dir, "prepare" + input + " --threads 2 --shard-tokens 1000 --out " + (dir / "many").string());
  REQUIRE_MESSAGE(many.code == 0, many.err);
  CHECK(many.out.find(": 4 shards, 3032 tokens (bytes) from 2 files") != std::string::npos);
  data::ByteTokenizer bytes;
  const std::vector<uint32_t> expected =
      data::tokenize_files(bytes, {(dir / "texts/a.txt").string(), (dir / "texts/more/b.jsonl").string()});
  REQUIRE(expected.size() == 3032);
  CHECK(data::TokenStream::open({(dir / "one.bin").string()}).read(0, 3032) == expected);
  const std::vector<std::string> shards = data::expand_path((dir / "many").string(), {".bin"});
  REQUIRE(shards.size() == 4);
  CHECK(fs::path(shards[3]).filename() == "shard-000003.bin");
  CHECK(data::TokenStream::open(shards).read(0, 3032) == expected);

  Result again = run_avey(dir, "prepare" + input + " --out " + (dir / "many").string());
  CHECK(again.code == 2);
  CHECK(again.err == "avey prepare: " + (dir / "many").string() + " already holds shards; remove them or choose another --out\n");
  std::ofstream(dir / "bad.jsonl") << "{\"text\": 3}\n";
  Result bad = run_avey(dir, "prepare --tokenizer bytes --input " + (dir / "bad.jsonl").string() + " --out " + (dir / "bad.bin").string());
  CHECK(bad.code == 1);
  CHECK(lines(bad.err) == 1);
  CHECK(bad.err.find((dir / "bad.jsonl").string() + ":1: expected a JSON object with a \"text\" string") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "bad.bin"));

  // Training reads the folder of shards (memory-mapped); the last 10% validates.
  std::ofstream(dir / "tiny.json") << R"({"vocab_size": 260, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  Result train = run_avey(dir, "train --config " + (dir / "tiny.json").string() + " --tokenizer bytes --data " + (dir / "many").string() +
                               " --device cpu --batch-size 2 --seq-len 32 --max-steps 2 --sample-every 0 --out " + (dir / "run").string());
  CHECK_MESSAGE(train.code == 0, train.err);
  CHECK(train.out.find("2729 train / 303 val tokens") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: llm.c shards train with --tokenizer r50k, another tokenizer is one clear line") {
  fs::path dir = setup_run_inputs(scratch("llmc"));
  auto r50k = data::load_tokenizer("r50k");
  std::ifstream in(dir / "text.txt");
  std::stringstream text;
  text << in.rdbuf();
  std::vector<uint16_t> ids = {50256};
  for (int32_t id : r50k->encode_ordinary(text.str())) ids.push_back(uint16_t(id));
  auto write_llmc = [&](const fs::path& path, size_t begin, size_t end) {  // llm.c's write_datafile layout
    std::vector<int32_t> header(256, 0);
    header[0] = 20240520, header[1] = 1, header[2] = int32_t(end - begin);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), 1024);
    out.write(reinterpret_cast<const char*>(ids.data() + begin), std::streamsize((end - begin) * 2));
  };
  fs::create_directories(dir / "fineweb");
  write_llmc(dir / "fineweb/fineweb_val_000000.bin", 0, 500);
  write_llmc(dir / "fineweb/fineweb_train_000001.bin", 500, ids.size());
  std::ofstream(dir / "gpt2.json") << R"({"vocab_size": 50304, "d_embed": 16, "n_layers": 1, "split_size": 8, "top_k": 2})";
  const std::string flags = "train --config " + (dir / "gpt2.json").string() + " --data " + (dir / "fineweb").string() +
                            " --device cpu --batch-size 2 --seq-len 32 --max-steps 2 --sample-every 0 --eval-batches 1";
  Result wrong = run_avey(dir, flags + " --out " + (dir / "wrong").string());
  CHECK(wrong.code == 1);
  CHECK(lines(wrong.err) == 1);
  CHECK(wrong.err.find("fineweb_train_000001.bin holds r50k ids but the run's tokenizer is p50k (train with --tokenizer r50k)") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir / "wrong"));
  Result right = run_avey(dir, flags + " --tokenizer r50k --out " + (dir / "right").string());
  REQUIRE_MESSAGE(right.code == 0, right.err);
  CHECK(right.out.find(std::to_string(ids.size() - 500) + " train / 500 val tokens") != std::string::npos);
  Result eval = run_avey(dir, "eval --device cpu --json --seq-len 32 --checkpoint " + (dir / "right").string() + " --data " +
                              (dir / "fineweb").string());
  REQUIRE_MESSAGE(eval.code == 0, eval.err);
  CHECK(nlohmann::json::parse(eval.out)["tokens"] == 499);
  fs::remove_all(dir);
}

TEST_CASE("cli: data too small for one training batch is refused before step 1, with one line") {
  fs::path dir = setup_run_inputs(scratch("small-data"));
  std::ofstream(dir / "short.txt") << std::string(99, 'x');
  Result r = run_avey(dir, "train --config " + (dir / "tiny.json").string() + " --tokenizer bytes --data " + (dir / "short.txt").string() +
                           " --device cpu --batch-size 4 --seq-len 64 --out " + (dir / "run").string());
  CHECK(r.code == 1);
  CHECK(lines(r.err) == 1);
  CHECK(r.err.find("loader: 90 tokens cannot fill one 4 x 64 batch (needs 257)") != std::string::npos);
  CHECK(r.out.find("step") == std::string::npos);
  CHECK_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}
