// AdamW over the model's one flat parameter buffer, exactly as torch.optim.AdamW (amsgrad=False).
//
// For step t = 1, 2, ... with gradient g (already scaled by the clip coefficient `grad_scale`):
//   p <- p * (1 - lr * wd)                      decoupled weight decay, decayed segments only
//   m <- b1 m + (1 - b1) g                      first moment  (fp32, flat, zero at t = 0)
//   v <- b2 v + (1 - b2) g^2                    second moment (fp32, flat, zero at t = 0)
//   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// which is p -= lr * m^ / (sqrt(v^) + eps) with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t), in
// the order of operations of PyTorch's fused kernel. Defaults are the paper's training recipe (docs/model.md):
// betas (0.9, 0.95), eps 1e-12, weight decay 0.1 on tensors of rank >= 2 only.
//
// The whole buffer is updated by one kernel launch (kernels::{cpu,cuda}::adamw); when a bf16
// working copy is given, the same launch writes bf16(p) into it.
#pragma once
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/checksum.h"
#include "engine/tensor.h"
#include "optim/clip.h"
#include "optim/segment.h"

namespace optim {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-12;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  // params: the flat f32 parameter buffer (CPU or CUDA), updated in place by step(). The
  // optimizer keeps a handle to it. segments: its name/offset table; elements of segments with
  // decay = true take weight decay, all others (including gaps) do not. An empty table means
  // "one parameter group": every element decays, as torch.optim.AdamW(params) would.
  AdamW(engine::Tensor params, const std::vector<Segment>& segments, AdamWConfig config = {});

  // One optimizer step at learning rate lr. grads: the flat f32 gradient buffer (same numel and
  // device as params). grad_scale multiplies every gradient first: pass the clip coefficient
  // (optim::clip_grad_norm(...).scale) to fold clipping into the step. bf16_copy: when defined,
  // a bf16 tensor of params' numel and device that receives the updated weights.
  void step(const engine::Tensor& grads, double lr, double grad_scale = 1.0, engine::Tensor bf16_copy = {});
  // The same with the coefficient of optim::clip_grad_norm, read where it lies: on the GPU the
  // step is queued behind the norm without waiting for it.
  void step(const engine::Tensor& grads, double lr, const ClipResult& clip, engine::Tensor bf16_copy = {});

  int64_t step_count() const { return step_; }  // steps taken (t of the last step)
  const AdamWConfig& config() const { return config_; }
  void set_config(const AdamWConfig& config) { config_ = config; }
  const engine::Tensor& params() const { return params_; }
  const engine::Tensor& exp_avg() const { return m_; }     // m
  const engine::Tensor& exp_avg_sq() const { return v_; }  // v

  // ---- checkpoints ----
  // Binary format (host byte order, little-endian on every supported machine):
  //   char[8] "AVEYOPT1" | u32 version = 1 | u32 dtype = 0 (f32) | i64 step | i64 numel |
  //   f64 beta1, beta2, eps, weight_decay (informational) | f32 m[numel] | f32 v[numel] |
  //   u64 checksum of everything before it.
  // load_state accepts the file only whole: a bad magic, another version, another numel, a
  // truncated file, a wrong checksum or trailing bytes throw std::runtime_error with one line
  // naming the file and the problem, and leave the optimizer unchanged. The hyper-parameters
  // in the file are not applied (the run's config decides them).
  // write_state refuses (throws) when a moment is NaN or infinite: a run that diverged keeps its
  // last good checkpoint.
  engine::FileDigest save_state(const std::string& path) const;  // atomic (engine/atomic_file.h)
  void load_state(const std::string& path);
  void write_state(std::ostream& out) const;                      // to embed in a bigger file
  void read_state(std::istream& in, const std::string& what = "optimizer state");

 private:
  // grad_scale: one double on params' device.
  void update(const engine::Tensor& grads, double lr, const double* grad_scale, engine::Tensor bf16_copy);

  engine::Tensor params_, m_, v_;
  std::shared_ptr<engine::Storage> decay_mask_;  // numel bytes on params' device; null: all decay
  AdamWConfig config_;
  int64_t step_ = 0;
};

}  // namespace optim
