#include "optim/adamw.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "engine/atomic_file.h"
#include "engine/checksum.h"
#include "engine/optimizer_ops.h"

namespace optim {

using engine::DType;
using engine::Device;
using engine::Tensor;

namespace {

constexpr char kMagic[8] = {'A', 'V', 'E', 'Y', 'O', 'P', 'T', '1'};
constexpr uint32_t kVersion = 1;

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("adamw: " + what); }

#pragma pack(push, 1)
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dtype;  // 0: f32
  int64_t step;
  int64_t numel;
  double beta1, beta2, eps, weight_decay;
};
#pragma pack(pop)

}  // namespace

AdamW::AdamW(Tensor params, const std::vector<Segment>& segments, AdamWConfig config)
    : params_(std::move(params)), config_(config) {
  if (!params_.defined()) fail("params is undefined");
  if (params_.dtype() != DType::F32) fail("params must be the flat f32 master buffer, got " + params_.describe());
  const int64_t n = params_.numel();
  check_segments(segments, n);
  m_ = Tensor::zeros({n}, DType::F32, params_.device());
  v_ = Tensor::zeros({n}, DType::F32, params_.device());
  if (!segments.empty()) {
    std::vector<uint8_t> mask(size_t(n), 0);
    for (const Segment& s : segments)
      if (s.decay) std::fill(mask.begin() + s.offset, mask.begin() + s.offset + s.numel, uint8_t(1));
    decay_mask_ = std::make_shared<engine::Storage>(size_t(n), params_.device());
    engine::copy_bytes(decay_mask_->data, params_.device(), mask.data(), Device::CPU, size_t(n));
  }
}

void AdamW::step(const Tensor& grads, double lr, double grad_scale, Tensor bf16_copy) {
  const Tensor scale = Tensor::from(std::vector<double>{grad_scale}, {1}, params_.device());
  update(grads, lr, scale.data<double>(), std::move(bf16_copy));
}

void AdamW::step(const Tensor& grads, double lr, const ClipResult& clip, Tensor bf16_copy) {
  if (!clip.stats.defined() || clip.stats.dtype() != DType::F64 || clip.stats.numel() != 2 ||
      clip.stats.device() != params_.device())
    fail(std::string("clip must come from clip_grad_norm on ") + engine::name_of(params_.device()) + ", got " +
         (clip.stats.defined() ? clip.stats.describe() : std::string("undefined")));
  update(grads, lr, clip.stats.data<double>() + 1, std::move(bf16_copy));
}

void AdamW::update(const Tensor& grads, double lr, const double* grad_scale, Tensor bf16_copy) {
  const int64_t n = params_.numel();
  if (!grads.defined() || grads.dtype() != DType::F32 || grads.numel() != n || grads.device() != params_.device())
    fail("grads must be f32 with " + std::to_string(n) + " elements on " + engine::name_of(params_.device()) +
         ", got " + (grads.defined() ? grads.describe() : std::string("undefined")));
  if (bf16_copy.defined() &&
      (bf16_copy.dtype() != DType::BF16 || bf16_copy.numel() != n || bf16_copy.device() != params_.device()))
    fail("bf16_copy must be bf16 with " + std::to_string(n) + " elements on " + engine::name_of(params_.device()) +
         ", got " + bf16_copy.describe());
  ++step_;
  const AdamWConfig& c = config_;
  const engine::AdamWHyper h{lr, c.beta1, c.beta2, c.eps, c.weight_decay, 1.0 - std::pow(c.beta1, double(step_)),
                             1.0 - std::pow(c.beta2, double(step_))};
  const uint8_t* mask = decay_mask_ ? static_cast<const uint8_t*>(decay_mask_->data) : nullptr;
  engine::adamw_update(params_, grads, m_, v_, mask, bf16_copy, h, grad_scale);
}

// ---- checkpoints ----

void AdamW::write_state(std::ostream& out) const {
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.dtype = 0;
  h.step = step_;
  h.numel = params_.numel();
  h.beta1 = config_.beta1;
  h.beta2 = config_.beta2;
  h.eps = config_.eps;
  h.weight_decay = config_.weight_decay;
  const std::vector<float> m = m_.to_vector<float>(), v = v_.to_vector<float>();
  for (const auto& [moment, name] : {std::pair{&m, "m"}, std::pair{&v, "v"}}) {
    auto bad = std::find_if(moment->begin(), moment->end(), [](float x) { return !std::isfinite(x); });
    if (bad != moment->end())
      throw std::runtime_error(fmt::format("adamw: refusing to save a non-finite moment ({}[{}] = {})", name,
                                           bad - moment->begin(), *bad));
  }
  engine::Checksum sum;
  sum.update(&h, sizeof h);
  sum.update(m.data(), m.size() * 4);
  sum.update(v.data(), v.size() * 4);
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  out.write(reinterpret_cast<const char*>(m.data()), std::streamsize(m.size() * 4));
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
  out.write(reinterpret_cast<const char*>(&sum.h), sizeof sum.h);
}

// Reads and checks a whole state, committing nothing: the caller commits once all checks pass.
static void parse_state(std::istream& in, const std::string& what, int64_t n, int64_t& step, std::vector<float>& m,
                        std::vector<float>& v) {
  auto bad = [&](const std::string& why) -> std::runtime_error { return std::runtime_error(what + ": " + why); };
  const size_t expected = sizeof(Header) + size_t(n) * 8 + 8;
  auto truncated = [&](size_t got) {
    return bad("truncated (expected " + std::to_string(expected) + " bytes, got " + std::to_string(got) + ")");
  };
  Header h{};
  in.read(reinterpret_cast<char*>(&h), sizeof h);
  if (size_t(in.gcount()) < 8) throw truncated(size_t(in.gcount()));
  if (std::memcmp(h.magic, kMagic, 8) != 0) throw bad("not an Avey optimizer state (no AVEYOPT1 magic)");
  if (size_t(in.gcount()) < sizeof h) throw truncated(size_t(in.gcount()));
  if (h.version != kVersion)
    throw bad("format version " + std::to_string(h.version) + ", this build reads version " +
              std::to_string(kVersion));
  if (h.dtype != 0) throw bad("moments of dtype code " + std::to_string(h.dtype) + ", expected 0 (f32)");
  if (h.numel != n)
    throw bad("holds moments for " + std::to_string(h.numel) + " parameters, the model has " + std::to_string(n));
  if (h.step < 0) throw bad("negative step count " + std::to_string(h.step));
  m.assign(size_t(n), 0.0f);
  v.assign(size_t(n), 0.0f);
  size_t got = sizeof h;
  in.read(reinterpret_cast<char*>(m.data()), std::streamsize(m.size() * 4));
  got += size_t(in.gcount());
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  got += size_t(in.gcount());
  uint64_t stored = 0;
  in.read(reinterpret_cast<char*>(&stored), sizeof stored);
  got += size_t(in.gcount());
  if (got < expected) throw truncated(got);
  engine::Checksum sum;
  sum.update(&h, sizeof h);
  sum.update(m.data(), m.size() * 4);
  sum.update(v.data(), v.size() * 4);
  if (sum.h != stored) throw bad("checksum mismatch (the file is corrupt)");
  step = h.step;
}

void AdamW::read_state(std::istream& in, const std::string& what) {
  int64_t step = 0;
  std::vector<float> m, v;
  parse_state(in, what, params_.numel(), step, m, v);
  m_.copy_(Tensor::from(m, {params_.numel()}));
  v_.copy_(Tensor::from(v, {params_.numel()}));
  step_ = step;
}

engine::FileDigest AdamW::save_state(const std::string& path) const {
  return engine::write_file_atomic(path, [&](std::ostream& out) { write_state(out); });
}

void AdamW::load_state(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string what = "optimizer state '" + path + "'";
  if (!in) throw std::runtime_error(what + ": cannot open for reading");
  int64_t step = 0;
  std::vector<float> m, v;
  parse_state(in, what, params_.numel(), step, m, v);
  if (in.peek() != std::ifstream::traits_type::eof()) throw std::runtime_error(what + ": unexpected trailing bytes");
  m_.copy_(Tensor::from(m, {params_.numel()}));
  v_.copy_(Tensor::from(v, {params_.numel()}));
  step_ = step;
}

}  // namespace optim
