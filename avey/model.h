// An Avey model: the decoder (docs/model.md section 1: embedding, ranker, L blocks, tied head)
// or, when the config's model is "avey-b", the encoder (section 2: embedding, ranker with its
// compression, L static/dynamic layers, tied MLM head; avey/encoder.h). Below, the decoder:
//
//   X  = E[ids], right-padded with zero rows to n*S rows per sequence        [B*n*S, d]
//   H  = contexts(X): per split, K = k+1 slots of S rows (ranker.h)         [B*n, C, d]
//        kept in the packed layout: each left-padding row once (packing.h)  [rows <= B*n*C, d]
//   h <- h + F(norm(h)) for each block, F = fuser([ctx(Z0) (.) Z1 | Zh]),  Z = enricher(norm(h))
//   logits = ln_f(last S rows of each context, reassembled, padding dropped) E^T
//
// Parameters live in one flat buffer (and their gradients in another), in the PyTorch
// reference's order and with its names; each Param's value is a view into the buffer, starting
// at a multiple of kParamAlign elements (256 bytes in f32) so that every matrix is aligned.
//
// Mixed precision (dtype BF16, DESIGN.md): the flat buffer holds the fp32 master weights (what
// AdamW updates and checkpoints save) and the gradient buffer is fp32 too; a second flat buffer,
// working_params(), holds their bf16 copy, whose views are the leaves the forward computes
// with. A working view's gradient is the same fp32 view of flat_grads() (the engine adds bf16
// gradients into an fp32 .grad with a casting kernel), so activations are bf16 and every
// parameter gradient accumulates in fp32. AdamW refreshes the copy in its own launch when
// given working_params() as bf16_copy; after anything else writes the master weights, call
// refresh_working().
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "avey/block.h"
#include "avey/config.h"
#include "avey/encoder.h"
#include "avey/heads.h"
#include "avey/packing.h"
#include "avey/ranker.h"
#include "engine/ops.h"

namespace avey {

constexpr int64_t kParamAlign = 64;  // elements: each parameter's offset in the flat buffers

// Every parameter's name and shape, in the reference's order (PyTorch named_parameters()),
// computed from the config alone (no allocation).
std::vector<std::pair<std::string, engine::Shape>> parameter_layout(const Config& cfg);

struct Param {
  std::string name;
  engine::Tensor value;  // a view into flat_params(); its .grad() is a view into flat_grads()
  engine::Tensor work;   // what the forward uses: value itself, or (bf16) its view of working_params()
};

class Model {
 public:
  Model(const Config& cfg, engine::Device device = engine::Device::CPU, engine::DType dtype = engine::DType::F32);

  void init(uint64_t seed);  // docs/model.md's init, deterministic for a seed
  const Config& config() const { return cfg_; }
  engine::Device device() const { return device_; }
  engine::DType dtype() const { return dtype_; }  // the compute dtype (activations, working weights)
  engine::DType master_dtype() const { return flat_.dtype(); }  // f32 for bf16 models, else dtype()
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  engine::Tensor& flat_params() { return flat_; }
  // Every parameter's gradient, one flat buffer; a parameter no backward reached since
  // zero_grad() reads zeros.
  engine::Tensor& flat_grads();
  // The bf16 working copy of flat_params() in mixed precision; undefined otherwise.
  engine::Tensor& working_params() { return working_; }
  void refresh_working();  // working_params() = bf16(flat_params()); nothing when not mixed
  int64_t num_params() const { return num_params_; }  // the parameters' elements (the flat buffers add gaps)
  // Before a step's first backward: each parameter's next gradient is written into flat_grads(),
  // not added (no pass that zeroes the buffer: engine::Tensor::discard_grad).
  void zero_grad();

  // Mean cross-entropy over labels != -100; input_ids, labels [B, T] i32 (any device: they are read
  // on the host, so host tensors spare the GPU a wait). Records the graph.
  engine::Tensor loss(const engine::Tensor& input_ids, const engine::Tensor& labels);
  // [B, T, V] logits, no gradient.
  engine::Tensor logits(const engine::Tensor& input_ids);
  // Fine-tuning (Avey-B with a head, config.head; avey/heads.h). Labels by the reference's rule:
  // token head: i32 [B, T] (-100 ignored), cross-entropy; sequence head: i32 [B] cross-entropy,
  // float [B] MSE (num_labels 1), float [B, labels] BCE with logits. Records the graph.
  engine::Tensor task_loss(const engine::Tensor& input_ids, const engine::Tensor& labels);
  // Logits without gradient, fp32 (or fp64): sequence head [B, labels], token head [B, T, labels].
  engine::Tensor task_logits(const engine::Tensor& input_ids);
  // Generation mode (the decoder only): the logits [V] of the token after ids.back(). Only the
  // split holding the last position is ranked (against every earlier split) and run through the blocks.
  engine::Tensor next_token_logits(const std::vector<int32_t>& ids);

  // Names and shapes are checked (a clear error names a missing, unexpected or mis-shaped tensor);
  // f32, bf16 and f64 are accepted and converted.
  void load_state(const std::map<std::string, engine::Tensor>& tensors);
  std::map<std::string, engine::Tensor> state() const;  // views of the parameters

  // Studying gradients layer by layer: during each backward after this, hook(i, g) is called with
  // g = dL/d(output of block i) for every block (the last block first): the contexts' rows in the
  // packed layout of avey/packing.h ([contexts*C, d] when no context has padding, or with
  // set_packing(false)); the last block's output is only each context's current split,
  // [contexts*S, d] (all the head reads). An empty function turns it off. Parameter gradients are read from params() after backward.
  using BlockHook = std::function<void(int64_t layer, const engine::Tensor& grad)>;
  void set_block_hook(BlockHook hook) { block_hook_ = std::move(hook); }

  // Tests: run every block composed from recorded primitives instead of the fused block
  // (avey/block.h), and the head's loss from primitives too.
  void set_composed(bool on) { composed_ = on; }
  // Tests: keep every context's padding rows (the [N*C] layout, docs/model.md row for row) instead of
  // computing them once (avey/packing.h); the same function either way.
  void set_packing(bool on) { packing_ = on; }

 private:
  engine::Tensor& add_param(const std::string& name, const engine::Shape& shape);
  engine::Tensor encoder_init(const std::string& name, const engine::Shape& shape, engine::Rng& rng,
                              engine::DType dt) const;
  std::vector<int32_t> host_ids(const engine::Tensor& ids, int64_t& B, int64_t& T) const;
  engine::Tensor embed(const std::vector<int32_t>& ids, int64_t B, int64_t T) const;  // [B*Tp, d]
  struct Contexts {
    engine::Tensor h;  // [pack.rows, d]: the contexts' rows in the packed layout
    Packing pack;
  };
  Contexts contexts(const engine::Tensor& x, int64_t B, int64_t n) const;
  // The last layer's rows [B*n*S, d] (split b*n + i's row t at (b*n + i)*S + t): the decoder's
  // current splits, or the encoder's output before the head
  engine::Tensor hidden(const std::vector<int32_t>& ids, int64_t B, int64_t T) const;
  engine::Tensor encode(const engine::Tensor& x, int64_t B, int64_t n) const;  // Avey-B: x [B*n*S, d]
  engine::Tensor output_rows(const std::vector<int32_t>& ids, int64_t B, int64_t T) const;  // [B*T, d]
  engine::Tensor head_forward(const std::vector<int32_t>& ids, int64_t B, int64_t T) const;  // [B or B*T, labels]
  Contexts pack(const engine::Tensor& h, const ContextPlan& plan) const;  // h [N*C, d]
  engine::Tensor run_blocks(const Contexts& ctx) const;                  // [N*S, d]
  engine::Tensor norm(const engine::Tensor& x, const engine::Tensor& w, const engine::Tensor& b) const;

  Config cfg_;
  engine::Device device_;
  engine::DType dtype_;
  int64_t num_params_ = 0;
  engine::Tensor flat_, flat_grad_, working_;
  std::vector<Param> params_;
  engine::Tensor wte_, lnf_w_, lnf_b_;
  std::vector<BlockWeights> blocks_;         // the decoder's
  std::vector<EncoderLayerWeights> layers_;  // the encoder's, and its ranker's [S, C] compression
  engine::Tensor down_proj_;
  SequenceHead seq_head_;  // the fine-tuning head config.head names (avey/heads.h)
  TokenHead tok_head_;
  bool composed_ = false;
  bool packing_ = true;
  mutable std::vector<int64_t> packing_pad_;  // the padding packing_cache_ was made for
  mutable Packing packing_cache_;
  BlockHook block_hook_;
};

}  // namespace avey
