// Checkpoints and run folders (cli/checkpoint.h, cli/run_folder.h): a step folder loads back
// exactly or is refused with one line naming the file; non-finite weights are never written;
// one process per run folder; pointers, leftovers, pruning and log cutting.
#include "cli/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli/args.h"
#include "cli/run_folder.h"
#include "optim/segment.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

namespace {

avey::Config tiny_config() {
  avey::Config c;
  c.vocab_size = 40, c.d_embed = 8, c.n_layers = 1, c.split_size = 4, c.top_k = 2;
  return c;
}

// A model and an optimizer one step into training.
struct Trained {
  avey::Model model{tiny_config()};
  optim::AdamW opt{model.flat_params(), {}};
  explicit Trained(uint64_t seed) {
    model.init(seed);
    // A gradient as a backward leaves it: random on the parameters, zero in the gaps between them.
    engine::Rng rng(seed);
    std::vector<float> g(size_t(model.flat_params().numel()), 0.f);
    for (const avey::Param& p : model.params()) {
      const optim::Segment s = optim::segment_of(p.name, p.value, model.flat_params());
      const std::vector<float> r = engine::Tensor::randn({s.numel}, rng).to_vector<float>();
      std::copy(r.begin(), r.end(), g.begin() + s.offset);
    }
    opt.step(engine::Tensor::from(g, {int64_t(g.size())}), 1e-3);
  }
};

TrainState state_at(int64_t step) {
  TrainState st;
  st.step = step;
  st.tokenizer = "bytes";
  st.rng = engine::Rng(3).state();
  st.loader = {0, 5};
  st.best = TrainState::Best{step, 2.5};
  return st;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void flip_byte(const std::string& path, size_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(long(at));
  char c = 0;
  f.get(c);
  f.seekp(long(at));
  f.put(char(c ^ 1));
}

}  // namespace

TEST_CASE("checkpoint: a step folder loads back exactly, a damaged or mismatched one is refused by name") {
  TempDir dir("ckpt");
  Trained a(1);
  const std::string name = save_checkpoint(dir.path.string(), a.model, a.opt, state_at(1));
  CHECK(name == "step-00000001");
  const std::string step_dir = dir.file(name);
  for (const char* f : {"config.json", "model.safetensors", "optimizer.bin", "train_state.json"})
    CHECK(fs::exists(step_dir + "/" + f));

  Trained b(2);
  TrainState st = load_checkpoint(step_dir, b.model, b.opt);
  CHECK(st.step == 1);
  CHECK(st.tokenizer == "bytes");
  CHECK(st.loader.cursor == 5);
  REQUIRE(st.best);
  CHECK(st.best->val_loss == 2.5);
  CHECK(b.model.flat_params().to_vector<float>() == a.model.flat_params().to_vector<float>());
  CHECK(b.opt.exp_avg_sq().to_vector<float>() == a.opt.exp_avg_sq().to_vector<float>());
  CHECK(b.opt.step_count() == 1);

  // One flipped bit anywhere in a file.
  for (const char* f : {"model.safetensors", "optimizer.bin", "config.json"}) {
    const std::string path = step_dir + "/" + f;
    flip_byte(path, fs::file_size(path) / 2);
    const std::string err = error_of([&] { load_checkpoint(step_dir, b.model, b.opt); });
    CHECK_MESSAGE(err.find(path + ": ") == 0, err);
    CHECK(err.find("the checkpoint is damaged") != std::string::npos);
    flip_byte(path, fs::file_size(path) / 2);
  }
  // The state of another step in this folder.
  fs::rename(step_dir, dir.file("step-00000002"));
  CHECK(error_of([&] { load_checkpoint(dir.file("step-00000002"), b.model, b.opt); })
            .find("train_state.json says step 1") != std::string::npos);
  fs::rename(dir.file("step-00000002"), step_dir);
  // A model of another config.
  avey::Config c = tiny_config();
  c.n_layers = 2;
  avey::Model bigger(c);
  optim::AdamW opt(bigger.flat_params(), {});
  CHECK(error_of([&] { load_checkpoint(step_dir, bigger, opt); }).find("config.json: not the run's model config") !=
        std::string::npos);
}

TEST_CASE("checkpoint: non-finite weights or moments are refused before anything is written") {
  TempDir dir("ckpt-nan");
  Trained a(1);
  engine::Tensor w = a.model.params()[1].value;
  std::vector<float> v = w.to_vector<float>();
  v[3] = INFINITY;
  w.copy_(engine::Tensor::from(v, w.shape()));
  std::string err = error_of([&] { save_checkpoint(dir.path.string(), a.model, a.opt, state_at(1)); });
  CHECK(err == "refusing to save step 1: weight '" + a.model.params()[1].name +
                   "' holds a non-finite value at element 3 (the run diverged; the last checkpoint is kept)");
  CHECK(fs::is_empty(dir.path));

  Trained b(1);
  engine::Tensor m = b.opt.exp_avg();
  m.fill_(NAN);
  err = error_of([&] { save_checkpoint(dir.path.string(), b.model, b.opt, state_at(1)); });
  CHECK(err.find("adamw: refusing to save a non-finite moment (m[0]") == 0);
  CHECK(fs::is_empty(dir.path));  // the temporary folder is gone too
}

TEST_CASE("checkpoint: train_state.json errors name the file and the key") {
  auto err = [](const std::string& text) { return error_of([&] { parse_train_state(text, "S/train_state.json"); }); };
  CHECK(err("{") == "S/train_state.json: not valid JSON");
  CHECK(err("[1]") == "S/train_state.json: expected a JSON object");
  CHECK(err(R"({"tokenizer": "p50k"})") == "S/train_state.json: key 'step': missing");
  CHECK(err(R"({"step": 1e300})") == "S/train_state.json: key 'step': expected an integer, got 1e+300");
  CHECK(err(R"({"step": -2})") == "S/train_state.json: key 'step': must be >= 0, got -2");
  const std::string good_head = R"({"step": 2, "tokenizer": "p50k", "rng": "1 2", "loader": {"epoch": 0, "cursor": 1}, )";
  CHECK(err(good_head + R"("files": {"../x": {"bytes": 1, "checksum": "00000000000000ff"}}})") ==
        "S/train_state.json: key 'files.../x': not a file name");
  CHECK(err(good_head + R"("files": {"a": {"bytes": 1, "checksum": "xyz"}}})") ==
        "S/train_state.json: key 'files.a.checksum': expected 16 hex digits");
  CHECK(err(good_head + R"("best": {"step": 1, "val_loss": "low"}, "files": {}})") ==
        "S/train_state.json: key 'best.val_loss': expected a finite number, got \"low\"");
  TrainState st = parse_train_state(good_head + R"("files": {"a": {"bytes": 7, "checksum": "00000000000000ff"}}})", "S");
  CHECK(st.files.at("a") == engine::FileDigest{7, 255});
  CHECK_FALSE(st.best);
}

TEST_CASE("run folder: one process at a time, the lock goes with the process") {
  TempDir dir("lock");
  {
    RunFolder first(dir.path.string());
    CHECK(error_of([&] { RunFolder second(dir.path.string()); }) ==
          "avey train: " + dir.path.string() + " is in use by another avey train (pid " + std::to_string(::getpid()) +
              "); wait for it to finish or choose another --out");
  }
  RunFolder again(dir.path.string());  // released with the first
}

TEST_CASE("run folder: latest, what a crash leaves, pruning and cutting the logs") {
  TempDir dir("run-folder");
  RunFolder run(dir.path.string());
  CHECK_FALSE(run.latest());
  for (int s : {2, 4, 6, 8, 10}) fs::create_directories(dir.file(step_folder_name(s)));
  fs::create_directories(dir.file(".step-00000012.tmp.99"));
  dir.file("metrics.jsonl.tmp.123", "torn");
  dir.file("notes.tmp.txt", "a user's file");
  run.set_pointer("latest", "step-00000008");
  CHECK(*run.latest() == dir.file("step-00000008"));
  run.remove_leftovers();  // step 10 came after `latest`: an interrupted save's
  CHECK_FALSE(fs::exists(dir.file("step-00000010")));
  CHECK_FALSE(fs::exists(dir.file(".step-00000012.tmp.99")));
  CHECK_FALSE(fs::exists(dir.file("metrics.jsonl.tmp.123")));
  CHECK(fs::exists(dir.file("notes.tmp.txt")));
  run.prune(2, 2);  // the newest two and the best (step 2)
  CHECK(fs::exists(dir.file("step-00000002")));
  CHECK_FALSE(fs::exists(dir.file("step-00000004")));
  CHECK(fs::exists(dir.file("step-00000006")));
  CHECK(fs::exists(dir.file("step-00000008")));

  dir.file("metrics.jsonl", "{\"step\": 7, \"loss\": 1}\n{\"step\": 8, \"loss\": 2}\n{\"step\": 9, \"loss\": 3}\n{\"st");
  dir.file("samples.txt", "=== step 4 ===\nfour\n=== step 8 ===\neight\nmore\n=== step 9 ===\nnine\n");
  run.cut_logs(8);
  CHECK(slurp(dir.file("metrics.jsonl")) == "{\"step\": 7, \"loss\": 1}\n{\"step\": 8, \"loss\": 2}\n");
  CHECK(slurp(dir.file("samples.txt")) == "=== step 4 ===\nfour\n=== step 8 ===\neight\nmore\n");

  dir.file("latest", "step-00000099\n");
  CHECK(error_of([&] { run.latest(); }) ==
        dir.file("latest") + ": names 'step-00000099', which is not a checkpoint folder of the run");
  dir.file("latest", "../elsewhere\n");
  CHECK(error_of([&] { run.latest(); }).find("names '../elsewhere'") != std::string::npos);
}

TEST_CASE("checkpoint: step folder names") {
  CHECK(step_folder_name(120) == "step-00000120");
  CHECK(step_of_folder("step-00000120") == 120);
  CHECK(step_of_folder("step-123456789") == 123456789);
  for (const char* bad : {"step-120", "step-", "step--0000001", "step-0000012x", "latest", "step-00000120/"})
    CHECK_FALSE(step_of_folder(bad));
}
