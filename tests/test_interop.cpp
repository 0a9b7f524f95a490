// Folders of the PyTorch ecosystem (cli/model_config.h, cli/model_folder.h): a folder in the
// layout the reference's save_pretrained writes (its config.json keys, any vocabulary, one
// safetensors file or shards with an index, float32/bfloat16/float16 weights) loads and computes
// exactly what the engine computes from its own config; what the engine cannot compute the same
// way is refused by name; export's config reads back as the same model.
#include <filesystem>

#include "cli/model_folder.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

namespace {

// config.json as transformers' save_pretrained writes it for the reference's AveyConfig.
const char* kReferenceConfig = R"({
  "architectures": [
    "Avey"
  ],
  "chunk_size": 8,
  "context_proportion": 0.5,
  "d_embed": 8,
  "expansion_factor": 4,
  "extended_len": 24,
  "k": 3,
  "model_type": "avey",
  "n_blocks": 2,
  "torch_dtype": "float32",
  "transformers_version": "4.51.3",
  "vocab_size": 50281
}
)";

// The same model in the engine's own keys: K = k + 1, and the reference's ranker normalisation.
avey::Config engine_config() {
  avey::Config c;
  c.vocab_size = 50281, c.d_embed = 8, c.n_layers = 2, c.split_size = 8, c.top_k = 2, c.ranker_weight_norm = "first";
  return c;
}

std::vector<std::pair<std::string, engine::Tensor>> weights_of(const avey::Model& m, engine::DType dtype) {
  std::vector<std::pair<std::string, engine::Tensor>> out;
  for (const avey::Param& p : m.params()) out.emplace_back(p.name, p.value.detach().to(dtype));
  return out;
}

std::vector<float> logits_of(avey::Model& m) {
  engine::NoGrad no_grad;
  std::vector<int32_t> ids;
  for (int i = 0; i < 21; ++i) ids.push_back((i * 7919) % 50281);
  return m.logits(engine::Tensor::from(ids, {1, 21})).to_vector<float>();
}

}  // namespace

TEST_CASE("interop: a save_pretrained folder (vocabulary 50,281) computes what the engine's own config does") {
  TempDir dir("hf-folder");
  avey::Model original(engine_config());
  original.init(7);
  dir.file("config.json", kReferenceConfig);
  engine::save_safetensors(dir.file("model.safetensors"), weights_of(original, engine::DType::F32), {{"format", "pt"}});

  const ModelFolder folder = open_model_folder(dir.path.string());
  CHECK(folder.spec.reference);
  CHECK(folder.spec.config.model == "avey");
  CHECK(folder.spec.tokenizer == "p50k");
  CHECK(folder.step == 0);
  CHECK(folder.spec.config.to_json() == engine_config().to_json());
  CHECK(folder.spec.config.context_rows() == 24);
  auto loaded = load_model(folder, engine::Device::CPU, engine::DType::F32);
  CHECK(logits_of(*loaded) == logits_of(original));
}

TEST_CASE("interop: shards with an index, and bfloat16 or float16 weights, load") {
  TempDir dir("hf-shards");
  avey::Model original(engine_config());
  original.init(3);
  dir.file("config.json", kReferenceConfig);
  auto weights = weights_of(original, engine::DType::F32);
  // save_pretrained's layout for a large model: model-0000i-of-00002.safetensors and an index.
  const size_t half = weights.size() / 2;
  engine::save_safetensors(dir.file("model-00001-of-00002.safetensors"), {weights.begin(), weights.begin() + long(half)},
                           {{"format", "pt"}});
  engine::save_safetensors(dir.file("model-00002-of-00002.safetensors"), {weights.begin() + long(half), weights.end()},
                           {{"format", "pt"}});
  nlohmann::json index = {{"metadata", {{"total_size", 4 * original.num_params()}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < weights.size(); ++i)
    index["weight_map"][weights[i].first] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  dir.file("model.safetensors.index.json", index.dump(2));
  auto loaded = load_model(open_model_folder(dir.path.string()), engine::Device::CPU, engine::DType::F32);
  CHECK(logits_of(*loaded) == logits_of(original));

  // An index whose shard does not hold what it maps there, or holds more.
  index["weight_map"]["ln_f.weight"] = "model-00001-of-00002.safetensors";
  dir.file("model.safetensors.index.json", index.dump());
  CHECK(error_of([&] { load_model(open_model_folder(dir.path.string()), engine::Device::CPU, engine::DType::F32); })
            .find("holds 'ln_f.weight', which " + dir.file("model.safetensors.index.json") +
                  " maps to model-00001-of-00002.safetensors") != std::string::npos);
  fs::remove(dir.file("model.safetensors.index.json"));
  CHECK(error_of([&] { load_model(open_model_folder(dir.path.string()), engine::Device::CPU, engine::DType::F32); }) ==
        dir.path.string() + ": holds neither model.safetensors nor model.safetensors.index.json");

  // Weights saved in bfloat16 load as their float32 values.
  engine::save_safetensors(dir.file("model.safetensors"), weights_of(original, engine::DType::BF16), {{"format", "pt"}});
  auto half_model = load_model(open_model_folder(dir.path.string()), engine::Device::CPU, engine::DType::F32);
  CHECK(half_model->flat_params().to_vector<float>() ==
        original.flat_params().to(engine::DType::BF16).to(engine::DType::F32).to_vector<float>());
}

TEST_CASE("interop: reference configs are read by their keys, what the engine cannot compute is refused by name") {
  auto parse = [](const std::string& text) { return parse_model_config(text, "C/config.json"); };
  // Missing keys take the reference config class's defaults.
  ModelSpec d = parse(R"({"model_type": "avey"})");
  CHECK(d.config.vocab_size == 50304);
  CHECK(d.config.d_embed == 768);
  CHECK(d.config.n_layers == 26);
  CHECK(d.config.split_size == 64);
  CHECK(d.config.top_k == 7);
  CHECK(d.config.ranker_weight_norm == "first");
  CHECK(parse(R"({"model_type": "avey", "k": 1, "d_embed": 16, "n_blocks": 1})").config.top_k == 0);  // no retrieval
  auto err = [&](const std::string& text) { return error_of([&] { parse(text); }); };
  CHECK(err(R"({"model_type": "avey", "extended_len": 100})") ==
        "C/config.json: key 'extended_len': 100 is not k * chunk_size = 512");
  CHECK(err(R"({"model_type": "avey-c", "n_layers": 2})") ==
        "C/config.json: key 'model_type': 'avey-c' is not a model type this build reads (avey, avey-b)");
  CHECK(err(R"({"model_type": 3})") == "C/config.json: key 'model_type': expected a string, got 3");
  CHECK(err(R"({"model_type": "avey", "k": 0})") == "C/config.json: key 'k': must be >= 1, got 0");
  CHECK(err(R"({"model_type": "avey", "vocab_size": "50281"})") ==
        "C/config.json: key 'vocab_size': expected an integer, got \"50281\"");
  CHECK(err(R"({"model_type": "avey", "context_proportion": 0})") ==
        "C/config.json: key 'context_proportion': must be in (0, 1], got 0");
  CHECK(err(R"({"model_type": "avey", "vocab_size": 4611686018427387904})").find("at most 2^53") != std::string::npos);
  CHECK(err("{\"model_type\": \"avey\",") == "C/config.json: not valid JSON");
  // The tail is cut by the reference's rule, int(p m) plus one when odd: m = 64, p = 0.3 gives 20.
  CHECK(parse(R"({"model_type": "avey", "d_embed": 16, "context_proportion": 0.3})").config.tail_width() == 20);
}

TEST_CASE("interop: the exported config reads back as the same model, other models are refused by name") {
  ModelSpec spec{engine_config(), "bytes", false};
  const nlohmann::ordered_json j = to_reference_config(spec);
  CHECK(j["architectures"] == nlohmann::json::array({"Avey"}));
  CHECK(j["k"] == 3);
  CHECK(j["n_blocks"] == 2);
  CHECK(j["extended_len"] == 24);
  const ModelSpec back = parse_model_config(j.dump(), "exported");
  CHECK(back.config.to_json() == engine_config().to_json());
  CHECK(back.tokenizer == "bytes");

  spec.config.ranker_weight_norm = "max";
  CHECK(error_of([&] { to_reference_config(spec); }).find("ranker_weight_norm 'first'") != std::string::npos);
  spec.config.top_k = 1;  // one retrieved split: "max" and "first" are the same score
  CHECK(to_reference_config(spec)["k"] == 2);
  spec.config.enricher_activation = avey::Activation::Gelu;
  CHECK(error_of([&] { to_reference_config(spec); }).find("enricher_activation 'relu2'") != std::string::npos);
}

namespace {

// config.json as save_pretrained writes it for the reference encoder's AveyForMaskedLM.
const char* kReferenceEncoderConfig = R"({
  "architectures": [
    "AveyForMaskedLM"
  ],
  "chunk_size": 8,
  "d_embed": 16,
  "eps": 1e-12,
  "hidden_size": 16,
  "k": 2,
  "max_position_embeddings": 64,
  "model_type": "avey-b",
  "n_layers": 2,
  "torch_dtype": "float32",
  "transformers_version": "4.51.3",
  "vocab_size": 50368
}
)";

avey::Config encoder_config() {
  avey::Config c;
  c.model = "avey-b", c.vocab_size = 50368, c.d_embed = 16, c.n_layers = 2, c.split_size = 8, c.top_k = 2;
  c.seq_len = 64;
  return c;
}

}  // namespace

TEST_CASE("interop: an Avey-B save_pretrained folder (AveyForMaskedLM) computes what the engine's own config does") {
  TempDir dir("hf-encoder");
  avey::Model original(encoder_config());
  original.init(5);
  dir.file("config.json", kReferenceEncoderConfig);
  engine::save_safetensors(dir.file("model.safetensors"), weights_of(original, engine::DType::F32), {{"format", "pt"}});
  const ModelFolder folder = open_model_folder(dir.path.string());
  CHECK(folder.spec.config.to_json() == encoder_config().to_json());
  CHECK(folder.spec.config.mask_id == 50281);
  auto loaded = load_model(folder, engine::Device::CPU, engine::DType::F32);
  CHECK(logits_of(*loaded) == logits_of(original));

  // The exported config reads back as the same model.
  const nlohmann::ordered_json j = to_reference_config(folder.spec);
  CHECK(j["architectures"] == nlohmann::json::array({"AveyForMaskedLM"}));
  CHECK(j["k"] == 2);
  CHECK(parse_model_config(j.dump(), "exported").config.to_json() == encoder_config().to_json());

  // An AveyForMaskedLM folder holding a classifier's tensors: refused by name.
  auto weights = weights_of(original, engine::DType::F32);
  weights.emplace_back("classifier.weight", engine::Tensor::zeros({2, 16}));
  engine::save_safetensors(dir.file("model.safetensors"), weights, {{"format", "pt"}});
  CHECK(error_of([&] { load_model(open_model_folder(dir.path.string()), engine::Device::CPU, engine::DType::F32); })
            .find(dir.file("model.safetensors") + ": load_state: unexpected tensor 'classifier.weight'") != std::string::npos);
  // A vocabulary with no room for the mask token the folder names.
  CHECK(error_of([&] { parse_model_config(R"({"model_type": "avey-b", "vocab_size": 300})", "C"); })
            .find("key 'mask_id'") != std::string::npos);
}

TEST_CASE("interop: the head classes' configs read as an encoder with that head and its label count") {
  // the reference encoder's config with `extra` for "AveyForMaskedLM": a class name, or one that
  // closes the architectures array, adds keys and opens a dummy array for the rest of it
  auto with = [](const std::string& extra) {
    std::string text = kReferenceEncoderConfig;
    text.replace(text.find("\"AveyForMaskedLM\""), 17, extra);
    return parse_model_config(text, "C").config;
  };
  const avey::Config seq = with(R"("AveyForSequenceClassification"], "num_labels": 3, "x": [0)");
  CHECK(seq.head == "sequence");
  CHECK(seq.num_labels == 3);
  const avey::Config tok = with(R"("AveyForTokenClassification"], "id2label": {"0": "O", "1": "B-PER"}, "x": [0)");
  CHECK(tok.head == "token");
  CHECK(tok.num_labels == 2);  // the size of id2label
  CHECK(with(R"("AveyForTokenClassification")").num_labels == 2);  // transformers' default
  CHECK(!with(R"("AveyModel")").has_head());
  // written back: the class and num_labels, and the same model
  const nlohmann::ordered_json j = to_reference_config(ModelSpec{seq, "p50k", true});
  CHECK(j["architectures"] == nlohmann::json::array({"AveyForSequenceClassification"}));
  CHECK(j["num_labels"] == 3);
  CHECK(parse_model_config(j.dump(), "exported").config.to_json() == seq.to_json());
  CHECK(error_of([&] { with(R"("AveyForSequenceClassification"], "num_labels": 0, "x": [0)"); }) ==
        "C: key 'num_labels': must be >= 1, got 0");
}

TEST_CASE("interop: a run folder of an older avey (one checkpoint at the top, no digests) still loads") {
  TempDir dir("older-run");
  avey::Config c = engine_config();
  c.vocab_size = 300;
  avey::Model original(c);
  original.init(9);
  dir.file("config.json", c.to_json().dump(2));
  engine::save_safetensors(dir.file("model.safetensors"), weights_of(original, engine::DType::F32),
                           {{"step", "5"}, {"tokenizer", "bytes"}});
  dir.file("train_state.json", R"({"step": 5, "tokenizer": "bytes", "rng": "1", "loader": {"epoch": 0, "cursor": 5},
                                  "settings": {"lr": 0.001}})");
  const ModelFolder folder = open_model_folder(dir.path.string());
  CHECK(folder.step == 5);
  CHECK(folder.spec.tokenizer == "bytes");
  CHECK(load_model(folder, engine::Device::CPU, engine::DType::F32)->flat_params().to_vector<float>() ==
        original.flat_params().to_vector<float>());
}
