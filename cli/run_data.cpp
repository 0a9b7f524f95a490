#include "cli/run_data.h"

#include <fmt/format.h>

#include <stdexcept>

#include "cli/args.h"
#include "data/data.h"
#include "engine/device_info.h"

engine::Device resolve_device(const std::string& flag) {
  if (flag == "cpu") return engine::Device::CPU;
  if (flag == "cuda") {
    if (!engine::cuda_available())
      throw UsageError("avey: --device cuda, but " + std::string(engine::cuda_build() ? "no CUDA GPU is visible"
                                                                                      : "this build has no CUDA backend"));
    return engine::Device::CUDA;
  }
  if (flag == "auto") return engine::cuda_available() ? engine::Device::CUDA : engine::Device::CPU;
  throw UsageError("avey: --device must be cpu, cuda or auto, got '" + flag + "'");
}

engine::DType resolve_precision(const std::string& flag, engine::Device device) {
  if (flag == "fp32") return engine::DType::F32;
  if (flag == "bf16") {
    if (device != engine::Device::CUDA) throw UsageError("avey: --precision bf16 needs --device cuda (the CPU trains in fp32)");
    return engine::DType::BF16;
  }
  if (flag == "auto") return device == engine::Device::CUDA ? engine::DType::BF16 : engine::DType::F32;
  throw UsageError("avey: --precision must be fp32, bf16 or auto, got '" + flag + "'");
}

std::unique_ptr<data::Tokenizer> tokenizer_for(const std::string& name, const avey::Config& cfg) {
  auto tok = data::load_tokenizer(name);
  if (tok->vocab_size() > cfg.vocab_size)
    throw std::runtime_error(fmt::format("tokenizer {} has {} ids but the model's vocab_size is {}", name,
                                         tok->vocab_size(), cfg.vocab_size));
  return tok;
}

RunData load_run_data(const std::string& path, const std::string& tokenizer, const avey::Config& cfg) {
  RunData out;
  out.tokenizer = tokenizer_for(tokenizer, cfg);
  data::DataSplit split = data::open_data(path, *out.tokenizer, true);
  out.train = std::move(split.train);
  out.val = std::move(split.val);
  return out;
}
