// Every op on the GPU against the same op on the CPU, forward and backward, on fresh random
// inputs: one table, one entry per op (add an op by adding a line).
//
// For each entry and each GPU dtype: random CPU f32 inputs; the GPU gets copies (cast to bf16
// for the bf16 run, and then the CPU gets the same bf16-rounded values, so both compute the
// same function). Both run the op, then backward from sum(y * w) with a fixed random w; the
// outputs and every input gradient must agree normwise: ||gpu - cpu|| / ||cpu|| under 1e-5 for
// f32 and 1e-2 for bf16 (NaN never passes). Every GPU allocation is poisoned with NaN first,
// so an output element a kernel forgot to write fails the comparison.
//
// Without a GPU these tests are skipped; without a CUDA build there is one test that says so.
#include "tests/testing.h"

#ifndef AVEY_HAVE_CUDA

TEST_CASE("cuda: GPU op tests (no CUDA build)") { MESSAGE("no CUDA build: the GPU op tests were not compiled"); }

#else

#include <algorithm>
#include <cstring>
#include <functional>

#include "avey/block.h"
#include "avey/encoder.h"
#include "avey/head.h"
#include "avey/kernels/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda_testing.h"
#include "optim/clip.h"

using namespace engine;
using testing::rel_diff;
using testing::kNoGpu;
using testing::Poison;

namespace {


// A random CPU input: f32 normal (optionally kept `margin` away from 0, or positive), or i32
// uniform in [0, int_range) when int_range > 0 (indices, targets; -100 appears as "ignore"
// when with_ignore).
struct Input {
  Shape shape;
  double margin = 0.0;
  bool positive = false;
  int32_t int_range = 0;
  bool with_ignore = false;
};

struct GpuCase {
  std::string name;
  std::vector<Input> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> f;
  // bf16's normwise tolerance: 1e-2, or 2e-2 for the packed block bodies, whose gradients pass
  // through about ten bf16 roundings in a chain (each up to 2^-9) and sum only a few rows (one
  // of them measured 1.03e-2)
  double bf16_tol = 1e-2;
};

Input F(Shape s, double margin = 0.0) { return {std::move(s), margin}; }
Input Pos(Shape s) { return {std::move(s), 0.1, true}; }
Input I(Shape s, int32_t range, bool with_ignore = false) { return {std::move(s), 0.0, false, range, with_ignore}; }

// A small Avey config whose widths are multiples of 8 (the 16-byte vector paths of
// bias_act_split and act_grad_concat): d 32, m 128, halves of the tail 32, head 64, C 32.
avey::Config block_config() {
  avey::Config cfg;
  cfg.vocab_size = 11, cfg.d_embed = 32, cfg.n_layers = 1, cfg.split_size = 8, cfg.top_k = 3;
  cfg.validate();
  return cfg;
}

// A block's weights from a case's inputs: h, then norm gain, U, b, V, O, b_o.
avey::BlockWeights weights(const std::vector<Tensor>& x) { return {x[1], Tensor(), x[2], x[3], x[4], x[5], x[6]}; }

std::vector<GpuCase> cases() {
  using V = const std::vector<Tensor>&;
  const avey::Config bc = block_config();
  const int64_t bN = 2, bR = bN * bc.context_rows(), bd = bc.d_embed, bm = bc.expanded_width(), bC = bc.context_rows();
  // packed contexts (avey/packing.h): padding 24, 16, 0 and 24 rows; 24 shared + 64 own rows
  const std::vector<int64_t> pad{24, 16, 0, 24};
  const int64_t pR = 24 + 8 + 16 + 32 + 8;
  auto on = [bc](const std::vector<int64_t>& p, const Tensor& like) {
    return avey::make_packing(bc.split_size, bc.context_rows(), p, like.device());
  };
  auto flat = [on, bN](const Tensor& like) { return on(std::vector<int64_t>(size_t(bN), 0), like); };
  // the triangle kernels' sizes (C and the tail's halves multiples of 128): d 128, S 64, k 1
  avey::Config tc = bc;
  tc.d_embed = 128, tc.split_size = 64, tc.top_k = 1;
  tc.validate();
  const std::vector<int64_t> tpad{64, 0, 64};
  const int64_t tR = 64 + 64 + 128 + 64;
  // k 3 (C 256, two tile rows): padding of whole tile rows, contexts with and without padding
  avey::Config tc3 = tc;
  tc3.top_k = 3;
  tc3.validate();
  const std::vector<int64_t> tpad3{192, 128, 64, 0, 192};
  const int64_t tR3 = 192 + 64 + 128 + 192 + 256 + 64;
  avey::Config eb = avey::Config::preset("avey-b-tiny");  // Avey-B's layers: d 32, S 16
  eb.d_embed = 32, eb.split_size = 16;
  auto tri_block = [](const avey::Config& c, const std::vector<int64_t>& p) {  // packed, config c, padding p
    return [c, p](V x) {
      return avey::fused_block(x[0], weights(x), c, avey::make_packing(c.split_size, c.context_rows(), p, x[0].device()));
    };
  };
  return {
      {"matmul", {F({33, 65}), F({65, 17})}, [](V x) { return matmul(x[0], x[1]); }},
      {"matmul aT", {F({65, 33}), F({65, 17})}, [](V x) { return matmul(x[0], x[1], true, false); }},
      {"matmul bT", {F({33, 65}), F({17, 65})}, [](V x) { return matmul(x[0], x[1], false, true); }},
      {"matmul aT bT", {F({65, 33}), F({17, 65})}, [](V x) { return matmul(x[0], x[1], true, true); }},
      {"matmul 1x1", {F({1, 1}), F({1, 3})}, [](V x) { return matmul(x[0], x[1]); }},
      {"matmul batched", {F({3, 20, 31}), F({3, 31, 9})}, [](V x) { return matmul(x[0], x[1]); }},
      {"matmul batched aT bT", {F({3, 31, 20}), F({3, 9, 31})}, [](V x) { return matmul(x[0], x[1], true, true); }},
      {"matmul batch x weight", {F({4, 30, 40}), F({24, 40})}, [](V x) { return matmul(x[0], x[1], false, true); }},
      {"matmul weight x batch", {F({12, 40}), F({3, 40, 24})}, [](V x) { return matmul(x[0], x[1]); }},
      {"transpose", {F({3, 37, 45})}, [](V x) { return transpose(x[0]); }},
      {"add", {F({30, 41}), F({30, 41})}, [](V x) { return add(x[0], x[1]); }},
      {"add row bias (tall)", {F({700, 40}), F({40})}, [](V x) { return add(x[0], x[1]); }},
      {"add (16-byte vectors)", {F({64, 48}), F({64, 48})}, [](V x) { return add(x[0], x[1]); }},
      {"mul row (16-byte vectors)", {F({50, 24}), F({24})}, [](V x) { return mul(x[0], x[1]); }},
      {"mul scalar (16-byte vectors)", {F({30, 40}), F({1})}, [](V x) { return mul(x[0], x[1]); }},
      {"sub column", {F({2, 30, 41}), F({2, 30, 1})}, [](V x) { return sub(x[0], x[1]); }},
      {"mul scalar", {F({30, 41}), F({1})}, [](V x) { return mul(x[0], x[1]); }},
      {"mul row", {F({50, 23}), F({23})}, [](V x) { return mul(x[0], x[1]); }},
      {"div", {F({30, 41}), F({30, 41}, 0.5)}, [](V x) { return div(x[0], x[1]); }},
      {"div column", {F({30, 41}), F({30, 1}, 0.5)}, [](V x) { return div(x[0], x[1]); }},
      {"scale", {F({300, 7})}, [](V x) { return scale(x[0], -2.5); }},
      {"add_scalar", {F({300, 7})}, [](V x) { return add_scalar(x[0], 0.25); }},
      {"relu", {F({40, 50}, 0.05)}, [](V x) { return relu(x[0]); }},
      {"relu2", {F({40, 50}, 0.05)}, [](V x) { return relu2(x[0]); }},
      {"gelu", {F({40, 50})}, [](V x) { return gelu(x[0]); }},
      {"silu", {F({40, 50})}, [](V x) { return silu(x[0]); }},
      {"tanh", {F({40, 50})}, [](V x) { return engine::tanh(x[0]); }},
      {"sqrt", {Pos({40, 50})}, [](V x) { return engine::sqrt(x[0]); }},
      {"rsqrt", {Pos({40, 50})}, [](V x) { return rsqrt(x[0]); }},
      {"exp", {F({40, 50})}, [](V x) { return engine::exp(x[0]); }},
      {"log", {Pos({40, 50})}, [](V x) { return engine::log(x[0]); }},
      {"square", {F({40, 50})}, [](V x) { return square(x[0]); }},
      {"tril", {F({2, 9, 13})}, [](V x) { return tril(x[0]); }},
      {"tril -2", {F({2, 13, 9})}, [](V x) { return tril(x[0], -2); }},
      {"tril +3", {F({2, 9, 13})}, [](V x) { return tril(x[0], 3); }},
      {"softmax", {F({17, 300})}, [](V x) { return softmax(x[0]); }},
      {"softmax long rows", {F({5, 3000})}, [](V x) { return softmax(x[0]); }},
      {"softmax short rows", {F({2, 40, 5})}, [](V x) { return softmax(x[0]); }},
      {"rmsnorm", {F({37, 2000}), F({2000})}, [](V x) { return rmsnorm(x[0], x[1], 1e-5); }},
      {"rmsnorm tall", {F({600, 24}), F({24})}, [](V x) { return rmsnorm(x[0], x[1], 1e-5); }},
      {"rmsnorm odd width (block per row)", {F({37, 301}), F({301})}, [](V x) { return rmsnorm(x[0], x[1], 1e-5); }},
      {"layernorm", {F({37, 300}), F({300}), F({300})}, [](V x) { return layernorm(x[0], x[1], x[2], 1e-5); }},
      {"layernorm tall", {F({600, 24}), F({24}), F({24})}, [](V x) { return layernorm(x[0], x[1], x[2], 1e-5); }},
      {"l2norm outside", {F({37, 100})}, [](V x) { return l2norm_rows(x[0], 1e-6, NormEps::Outside); }},
      {"l2norm inside", {F({37, 100})}, [](V x) { return l2norm_rows(x[0], 1e-6, NormEps::Inside); }},
      {"l2norm max", {F({37, 100})}, [](V x) { return l2norm_rows(x[0], 1e-6, NormEps::Max); }},
      {"l2norm inside (warp per row)", {F({37, 256})}, [](V x) { return l2norm_rows(x[0], 1e-6, NormEps::Inside); }},
      {"l2norm outside odd width", {F({37, 99})}, [](V x) { return l2norm_rows(x[0], 1e-6, NormEps::Outside); }},
      {"l1norm (Avey-B's rows of S)", {F({130, 256})}, [](V x) { return l1norm_rows(x[0], 1e-12); }},
      {"l1norm odd width", {F({37, 99})}, [](V x) { return l1norm_rows(x[0], 1e-12); }},
      {"sum (many blocks)", {F({600, 500})}, [](V x) { return sum(x[0]); }},
      {"mean", {F({30, 41})}, [](V x) { return mean(x[0]); }},
      {"row_sums", {F({3, 50, 1500})}, [](V x) { return row_sums(x[0]); }},
      {"row_means", {F({70, 33})}, [](V x) { return row_means(x[0]); }},
      {"row_max", {F({70, 1500})}, [](V x) { return row_max(x[0]); }},
      {"slice_rows", {F({20, 30})}, [](V x) { return slice_rows(x[0], 3, 17); }},
      {"slice_cols", {F({20, 30})}, [](V x) { return slice_cols(x[0], 7, 23); }},
      {"concat_cols", {F({2, 20, 30}), F({2, 20, 11})}, [](V x) { return concat_cols({x[0], x[1]}); }},
      {"concat_rows", {F({20, 30}), F({11, 30})}, [](V x) { return concat_rows({x[0], x[1]}); }},
      {"split_cols", {F({20, 30})}, [](V x) { return split_cols(x[0], {10, 15, 5})[1]; }},
      {"gather_rows (repeats)", {F({50, 70}), I({6, 100}, 50)}, [](V x) { return gather_rows(x[0], x[1]); }},
      {"cross_entropy", {F({37, 1000}), I({37}, 1000)}, [](V x) { return cross_entropy(x[0], x[1]); }},
      {"cross_entropy ignore", {F({4, 9, 300}), I({4, 9}, 300, true)}, [](V x) { return cross_entropy(x[0], x[1]); }},
      {"cross_entropy vocab 50257", {F({6, 50257}), I({6}, 50257)}, [](V x) { return cross_entropy(x[0], x[1]); }},
      {"gather_rows 16384 tokens", {F({1000, 64}), I({16384}, 1000)}, [](V x) { return gather_rows(x[0], x[1]); }},
      {"avey fused_block (16-byte vector widths)",
       {F({bR, bd}), F({bd}), F({bm, bd}), F({bm}), F({bC, bC}), F({bd, bc.fuser_in()}), F({bd})},
       [bc, flat](V x) { return avey::fused_block(x[0], weights(x), bc, flat(x[0])); }},
      {"avey fused_final_block (the current split's rows)",
       {F({bR, bd}), F({bd}), F({bm, bd}), F({bm}), F({bC, bC}), F({bd, bc.fuser_in()}), F({bd})},
       [bc, flat](V x) { return avey::fused_final_block(x[0], weights(x), bc, flat(x[0])); }},
      {"avey fused_block (packed)",
       {F({pR, bd}), F({bd}), F({bm, bd}), F({bm}), F({bC, bC}), F({bd, bc.fuser_in()}), F({bd})},
       [bc, on, pad](V x) { return avey::fused_block(x[0], weights(x), bc, on(pad, x[0])); },
       2e-2},
      {"avey fused_final_block (packed)",
       {F({pR, bd}), F({bd}), F({bm, bd}), F({bm}), F({bC, bC}), F({bd, bc.fuser_in()}), F({bd})},
       [bc, on, pad](V x) {
         return avey::fused_final_block(x[0], weights(x), bc, on(pad, x[0]));
       },
       2e-2},
      {"avey fused_block (packed, triangle kernels in bf16)",
       {F({tR, 128}), F({128}), F({512, 128}), F({512}), F({128, 128}), F({128, tc.fuser_in()}), F({128})},
       tri_block(tc, tpad), 2e-2},
      {"avey fused_block (packed, triangle kernels in bf16, k 3)",
       {F({tR3, 128}), F({128}), F({512, 128}), F({512}), F({256, 256}), F({128, tc3.fuser_in()}), F({128})},
       tri_block(tc3, tpad3), 2e-2},
      {"avey-b encoder layer, static (d 32, S 16)",
       {F({64, 32}), F({32}), F({128, 32}), F({128}), F({16, 16}), F({32, 96}), F({32}), F({})},
       [eb](V x) { return avey::encoder_layer_fused(x[0], {x[1], x[2], x[3], x[4], x[5], x[6], x[7]}, eb); }, 2e-2},
      {"avey-b encoder layer, dynamic (d 32, S 16)",
       {F({64, 32}), F({32}), F({128, 32}), F({128}), F({32, 96}), F({32}), F({})},
       [eb](V x) { return avey::encoder_layer_fused(x[0], {x[1], x[2], x[3], Tensor(), x[4], x[5], x[6]}, eb); },
       2e-2},
      {"map_rows (packed contexts and back, summed padding rows)", {F({pR, 40})},
       [bc, on, pad](V x) {
         const avey::Packing p = on(pad, x[0]);
         return avey::to_packed(mul(avey::to_contexts(x[0], p), avey::to_contexts(x[0], p)), p);
       }},
      {"composite: mlp", {F({64, 48}), F({96, 48}), F({96}), F({48, 96})},
       [](V x) { return matmul(gelu(add(matmul(x[0], x[1], false, true), x[2])), x[3], false, true); }},
      // the 16-byte vector paths and their one-element fallbacks (appended: the cases above keep their inputs)
      {"mul column (16-byte vectors)", {F({2, 30, 48}), F({2, 30, 1})}, [](V x) { return mul(x[0], x[1]); }},
      {"row_sums (16-byte vectors)", {F({40, 2048})}, [](V x) { return row_sums(x[0]); }},
      {"row_sums odd width", {F({7, 333})}, [](V x) { return row_sums(x[0]); }},
      {"row_max (warp per row)", {F({301, 64})}, [](V x) { return row_max(x[0]); }},
      {"row_max odd width (warp per row)", {F({37, 45})}, [](V x) { return row_max(x[0]); }},
      {"gather_rows (16-byte vectors in f32 only)", {F({50, 36}), I({6, 100}, 50)},
       [](V x) { return gather_rows(x[0], x[1]); }},
      {"gather_rows odd width", {F({50, 13}), I({600}, 50)}, [](V x) { return gather_rows(x[0], x[1]); }},
  };
}

// A CPU tensor with the input's random values (f32, or i32 indices).
Tensor make_input(const Input& in, Rng& rng) {
  const size_t n = size_t(engine::numel(in.shape));
  if (in.int_range > 0) {
    std::vector<int32_t> v(n);
    for (size_t i = 0; i < n; ++i) {
      v[i] = int32_t(rng.uniform() * in.int_range) % in.int_range;
      if (in.with_ignore && i % 5 == 2) v[i] = -100;
    }
    return Tensor::from(v, in.shape);
  }
  std::vector<float> v(n);
  for (float& x : v) {
    double d = rng.normal();
    if (in.positive) d = std::abs(d);
    if (in.margin > 0 && std::abs(d) < in.margin) d = d < 0 ? d - in.margin : d + in.margin;
    x = float(d);
  }
  return Tensor::from(v, in.shape);
}

// Runs f on the inputs, then backward from sum(y * w); returns y and the input gradients.
std::vector<Tensor> run(const GpuCase& c, const std::vector<Tensor>& inputs, const Tensor& w) {
  Tensor y = c.f(inputs);
  sum(mul(y, w)).backward();
  std::vector<Tensor> out{y};
  for (const Tensor& x : inputs)
    if (x.dtype() != DType::I32) out.push_back(x.grad());
  return out;
}

// While alive, every new GPU allocation is filled with NaN bytes.

// The largest error seen per dtype, reported at the end.
struct Worst {
  double err = 0;
  std::string where;
};

void check_case(const GpuCase& c, DType dtype, Rng& rng, Worst& worst) {
  const double tol = dtype == DType::F32 ? 1e-5 : c.bf16_tol;
  std::vector<Tensor> cpu, gpu;
  for (const Input& in : c.inputs) {
    Tensor x = make_input(in, rng);
    if (x.dtype() == DType::I32) {
      cpu.push_back(x);
      gpu.push_back(x.to(Device::CUDA));
      continue;
    }
    Tensor xg = x.to(Device::CUDA).to(dtype);
    cpu.push_back(xg.to(Device::CPU).to(DType::F32).requires_grad_());  // the values the GPU sees
    gpu.push_back(xg.requires_grad_());
  }
  const Shape out_shape = c.f(cpu).shape();
  Tensor w = make_input(F(out_shape), rng).to(Device::CUDA).to(dtype);
  std::vector<Tensor> want = run(c, cpu, w.to(Device::CPU).to(DType::F32));
  std::vector<Tensor> got;
  {
    Poison poison;
    got = run(c, gpu, w);
  }
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);  // 0: the output, then each float input's gradient
    REQUIRE(got[i].defined());
    CHECK(got[i].dtype() == dtype);
    CHECK(got[i].is_cuda());
    const double err = rel_diff(got[i], want[i]);
    CAPTURE(err);
    CHECK(err < tol);
    if (err > worst.err) worst = {err, c.name + (i == 0 ? " (output)" : " (gradient " + std::to_string(i) + ")")};
  }
}

}  // namespace

TEST_CASE("cuda: every op matches the CPU, forward and backward, in f32 and bf16" * doctest::skip(kNoGpu)) {
  Rng rng(20251122);
  Worst f32, bf16;
  for (const GpuCase& c : cases()) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      CAPTURE(c.name);
      CAPTURE(std::string(name_of(dtype)));
      check_case(c, dtype, rng, dtype == DType::F32 ? f32 : bf16);
    }
  }
  MESSAGE(cases().size() << " ops; largest normwise error f32 " << f32.err << " in " << f32.where << ", bf16 "
                         << bf16.err << " in " << bf16.where);
}

// bias_act_split writing z0's row norm (zn, denom) in the same pass: the same bits as the unfused
// pair on the GPU (bias_act_split, then l2norm_rows reading z0 back), and the CPU's values. Widths
// that are multiples of 8 take the warp-per-row kernel (37 rows: the last block of 8 rows is
// partly empty; 768 is small's Z0, 3 vectors a lane in bf16 and too long for f32's registers);
// odd widths and too-long rows the fallback (the split, then l2norm_rows).
template <class T> T* data_or_null(Tensor& t) { return t.numel() > 0 ? t.data<T>() : nullptr; }

TEST_CASE("cuda: bias_act_split's row norm of z0 equals bias_act_split then l2norm_rows, bit for bit" *
          doctest::skip(kNoGpu)) {
  struct Case {
    int64_t rows, w0, w1, w2;
    bool has_act;
    kernels::Unary f;
    bool keep_p;
  };
  const double eps = 1e-6;
  const std::vector<Case> cases = {
      {37, 64, 64, 128, true, kernels::Unary::Relu2, false}, {37, 256, 256, 512, true, kernels::Unary::Gelu, true},
      {37, 768, 768, 1536, true, kernels::Unary::Relu2, false}, {37, 64, 32, 0, false, kernels::Unary::Relu, false},
      {33, 12, 20, 9, true, kernels::Unary::Silu, true},        {9, 1040, 8, 8, true, kernels::Unary::Relu, false}};
  Rng rng(17);
  auto run = [&]<class T>(const Case& k, DType dtype) {
    const int64_t cols = k.w0 + k.w1 + k.w2;
    const Tensor p_in = Tensor::randn({k.rows, cols}, rng).to(Device::CUDA).to(dtype);
    const Tensor bias = Tensor::randn({cols}, rng).to(Device::CUDA).to(dtype);
    // outputs: p, z0, z1, z2, zn, denom
    auto outputs = [&](Device dev, DType t) {
      return std::vector<Tensor>{p_in.to(dev).to(t).clone(),          Tensor::empty({k.rows, k.w0}, t, dev),
                                 Tensor::empty({k.rows, k.w1}, t, dev), Tensor::empty({k.rows, k.w2}, t, dev),
                                 Tensor::empty({k.rows, k.w0}, t, dev), Tensor::empty({k.rows}, t, dev)};
    };
    std::vector<Tensor> fused, unfused;
    {
      Poison poison;
      fused = outputs(Device::CUDA, dtype), unfused = outputs(Device::CUDA, dtype);
      avey::kernels::cuda::bias_act_split<T>({.rows = k.rows, .cols = cols, .p = fused[0].data<T>(),
                                              .bias = bias.data<T>(), .has_act = k.has_act, .f = k.f, .w0 = k.w0,
                                              .w1 = k.w1, .z0 = fused[1].data<T>(), .z1 = fused[2].data<T>(),
                                              .z2 = data_or_null<T>(fused[3]), .ld2 = k.w2, .keep_p = k.keep_p,
                                              .zn = fused[4].data<T>(), .denom = fused[5].data<T>(), .eps = eps});
      avey::kernels::cuda::bias_act_split<T>({.rows = k.rows, .cols = cols, .p = unfused[0].data<T>(),
                                              .bias = bias.data<T>(), .has_act = k.has_act, .f = k.f, .w0 = k.w0,
                                              .w1 = k.w1, .z0 = unfused[1].data<T>(), .z1 = unfused[2].data<T>(),
                                              .z2 = data_or_null<T>(unfused[3]), .ld2 = k.w2, .keep_p = k.keep_p,
                                              .eps = eps});
      kernels::cuda::l2norm_rows<T>(NormEps::Inside, k.rows, k.w0, unfused[1].data<T>(), eps, unfused[4].data<T>(),
                                    unfused[5].data<T>());
    }
    std::vector<Tensor> cpu = outputs(Device::CPU, DType::F32);
    const Tensor cpu_bias = bias.to(Device::CPU).to(DType::F32);
    avey::kernels::cpu::bias_act_split<float>({.rows = k.rows, .cols = cols, .p = cpu[0].data<float>(),
                                               .bias = cpu_bias.data<float>(), .has_act = k.has_act, .f = k.f,
                                               .w0 = k.w0, .w1 = k.w1, .z0 = cpu[1].data<float>(),
                                               .z1 = cpu[2].data<float>(), .z2 = data_or_null<float>(cpu[3]),
                                               .ld2 = k.w2, .keep_p = true, .zn = cpu[4].data<float>(),
                                               .denom = cpu[5].data<float>(), .eps = eps});
    const double tol = dtype == DType::F32 ? 1e-5 : 1e-2;
    for (size_t i = k.keep_p ? 0 : 1; i < fused.size(); ++i) {  // without keep_p, p may or may not be written
      if (i == 3 && k.w2 == 0) continue;
      CAPTURE(i);
      const Tensor a = fused[i].to(Device::CPU), b = unfused[i].to(Device::CPU);
      CHECK(std::memcmp(a.raw(), b.raw(), size_t(a.numel()) * size_of(dtype)) == 0);
      const double err = rel_diff(a, cpu[i]);
      CAPTURE(err);
      CHECK(err < tol);
    }
  };
  for (const Case& k : cases) {
    CAPTURE(k.w0);
    CAPTURE(k.rows);
    run.operator()<float>(k, DType::F32);
    run.operator()<kernels::bf16>(k, DType::BF16);
  }
}

// The kernels that read or write a column window of block_body's fuser input [c | Zh] and its
// gradient (rows ld apart): bias_act_split's z2, act_grad_concat's z2 and g2 (with the bias
// gradient), mul_pair's g, against the CPU (mul_pair: against plain loops), f32 and bf16, with
// 16-byte vector widths and with odd ones (the scalar kernels).
TEST_CASE("cuda: bias_act_split, act_grad_concat and mul_pair with row strides match the CPU" *
          doctest::skip(kNoGpu)) {
  struct Case {
    int64_t rows, w0, w1, w2, ld2;
  };
  Rng rng(23);
  auto run = [&]<class T>(const Case& k, DType dtype) {
    const int64_t cols = k.w0 + k.w1 + k.w2;
    const double tol = dtype == DType::F32 ? 1e-5 : 1e-2;
    // GPU tensors of random values (zeros), and the CPU's f32 copies of the same values
    auto gpu_randn = [&](Shape shape) { return Tensor::randn(shape, rng).to(Device::CUDA).to(dtype); };
    auto zeros = [&](Shape shape) { return Tensor::zeros(shape, dtype, Device::CUDA); };
    auto on_cpu = [](const Tensor& t) -> Tensor { return t.to(Device::CPU).to(DType::F32); };
    // bias_act_split (gelu, p kept): z2 into a wider zero matrix, the gaps stay 0
    const Tensor p = gpu_randn({k.rows, cols}), bias = gpu_randn({cols});
    std::vector<Tensor> g{p.clone(), zeros({k.rows, k.w0}), zeros({k.rows, k.w1}), zeros({k.rows, k.ld2})};
    std::vector<Tensor> c{on_cpu(p), on_cpu(g[1]), on_cpu(g[2]), on_cpu(g[3])};
    const Tensor cbias = on_cpu(bias);
    avey::kernels::cuda::bias_act_split<T>({.rows = k.rows, .cols = cols, .p = g[0].data<T>(), .bias = bias.data<T>(),
                                            .f = kernels::Unary::Gelu, .w0 = k.w0, .w1 = k.w1, .z0 = g[1].data<T>(),
                                            .z1 = g[2].data<T>(), .z2 = g[3].data<T>(), .ld2 = k.ld2, .keep_p = true,
                                            .eps = 1e-6});
    avey::kernels::cpu::bias_act_split<float>({.rows = k.rows, .cols = cols, .p = c[0].data<float>(),
                                               .bias = cbias.data<float>(), .f = kernels::Unary::Gelu, .w0 = k.w0,
                                               .w1 = k.w1, .z0 = c[1].data<float>(), .z1 = c[2].data<float>(),
                                               .z2 = c[3].data<float>(), .ld2 = k.ld2, .keep_p = true, .eps = 1e-6});
    for (size_t i = 0; i < g.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_diff(g[i], c[i]) < tol);
    }
    // act_grad_concat, from p (gelu) and from z (relu: z >= 0), with the bias gradient
    const Tensor z0 = gpu_randn({k.rows, k.w0}), z1 = gpu_randn({k.rows, k.w1}), z2 = gpu_randn({k.rows, k.ld2});
    const Tensor g0 = gpu_randn({k.rows, k.w0}), g1 = gpu_randn({k.rows, k.w1}), g2 = gpu_randn({k.rows, k.ld2});
    const Tensor relu_z0 = relu(z0), relu_z1 = relu(z1), relu_z2 = relu(z2);
    for (bool from_p : {true, false}) {
      CAPTURE(from_p);
      const Tensor &a0 = from_p ? z0 : relu_z0, &a1 = from_p ? z1 : relu_z1, &a2 = from_p ? z2 : relu_z2;
      const kernels::Unary f = from_p ? kernels::Unary::Gelu : kernels::Unary::Relu;
      Tensor gp, gb, cgp = Tensor::empty({k.rows, cols}), cgb = Tensor::empty({cols});
      {
        Poison poison;
        gp = Tensor::empty({k.rows, cols}, dtype, Device::CUDA), gb = Tensor::empty({cols}, dtype, Device::CUDA);
        avey::kernels::cuda::act_grad_concat<T>({.rows = k.rows, .cols = cols, .p = from_p ? p.data<T>() : nullptr,
                                                 .z0 = a0.data<T>(), .z1 = a1.data<T>(), .z2 = a2.data<T>(),
                                                 .ld2 = k.ld2, .f = f, .w0 = k.w0, .w1 = k.w1, .g0 = g0.data<T>(),
                                                 .g1 = g1.data<T>(), .g2 = g2.data<T>(), .gp = gp.data<T>(),
                                                 .gbias = gb.data<T>()});
      }
      const Tensor cp = on_cpu(p), c0 = on_cpu(a0), c1 = on_cpu(a1), c2 = on_cpu(a2);
      const Tensor h0 = on_cpu(g0), h1 = on_cpu(g1), h2 = on_cpu(g2);
      avey::kernels::cpu::act_grad_concat<float>({.rows = k.rows, .cols = cols,
                                                  .p = from_p ? cp.data<float>() : nullptr, .z0 = c0.data<float>(),
                                                  .z1 = c1.data<float>(), .z2 = c2.data<float>(), .ld2 = k.ld2,
                                                  .f = f, .w0 = k.w0, .w1 = k.w1, .g0 = h0.data<float>(),
                                                  .g1 = h1.data<float>(), .g2 = h2.data<float>(),
                                                  .gp = cgp.data<float>(), .gbias = cgb.data<float>()});
      CHECK(rel_diff(gp, cgp) < tol);
      CHECK(rel_diff(gb, cgb) < tol);
    }
    // mul_pair: g = the first w0 columns of g2's rows (ld2 apart)
    Tensor ya, yb;
    {
      Poison poison;
      ya = Tensor::empty({k.rows, k.w0}, dtype, Device::CUDA), yb = Tensor::empty({k.rows, k.w0}, dtype, Device::CUDA);
      kernels::cuda::mul_pair<T>(k.rows, k.w0, g2.data<T>(), k.ld2, z0.data<T>(), g0.data<T>(), ya.data<T>(),
                                 yb.data<T>());
    }
    const Tensor gc = slice_cols(on_cpu(g2), 0, k.w0);
    CHECK(rel_diff(ya, mul(gc, on_cpu(z0))) < tol);
    CHECK(rel_diff(yb, mul(gc, on_cpu(g0))) < tol);
  };
  // narrow rows in short chunks; unaligned widths (the scalar kernels); wide rows (more than one
  // block of columns) over 16384 rows (64-row chunks, the last one short)
  for (const Case& k : {Case{70, 16, 16, 32, 48}, Case{33, 5, 7, 9, 12}, Case{16400, 256, 256, 264, 272}}) {
    CAPTURE(k.w0);
    run.operator()<float>(k, DType::F32);
    run.operator()<kernels::bf16>(k, DType::BF16);
  }
}

// The tied head in mixed precision takes its own path on the GPU (cross-entropy on the bf16
// logits, dE summed in fp32 by the products): against the CPU's f32 on the same bf16-rounded
// values, over several chunks and with ignored rows.
TEST_CASE("cuda: the tied head's bf16 cross-entropy matches the CPU" * doctest::skip(kNoGpu)) {
  Rng rng(7);
  const int64_t N = 37, V = 1000, d = 64;
  Tensor h = make_input(F({N, d}), rng).to(Device::CUDA).to(DType::BF16);
  Tensor e = make_input(F({V, d}), rng).to(Device::CUDA).to(DType::BF16);
  Tensor t = make_input(I({N}, int32_t(V), true), rng);
  auto run_head = [&](Device dev) {
    auto copy = [dev](const Tensor& x) {  // bf16 on the GPU, its exact f32 values on the CPU
      return (dev == Device::CUDA ? x.to(Device::CPU).to(Device::CUDA) : x.to(Device::CPU).to(DType::F32)).requires_grad_();
    };
    Tensor hh = copy(h), ee = copy(e);
    // 8 rows a chunk, 5 chunks (the GPU's bf16 path takes 16x the elements a chunk)
    Tensor loss = avey::tied_head_loss(hh, ee, t.to(dev), dev == Device::CUDA ? V / 2 : 8 * V);
    loss.backward();
    return std::vector<Tensor>{loss, hh.grad(), ee.grad()};
  };
  std::vector<Tensor> want = run_head(Device::CPU), got;
  {
    Poison poison;
    got = run_head(Device::CUDA);
  }
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    const double err = rel_diff(got[i].to(Device::CPU).to(DType::F32), want[i]);
    CAPTURE(err);
    CHECK(err < 1e-2);
  }
}

TEST_CASE("cuda: poisoning fills new allocations with NaN" * doctest::skip(kNoGpu)) {
  Poison poison;
  for (DType t : {DType::F32, DType::BF16}) {
    auto v = Tensor::empty({1000}, t, Device::CUDA).to(DType::F32).to(Device::CPU).to_vector<float>();
    CHECK(std::all_of(v.begin(), v.end(), [](float x) { return std::isnan(x); }));
  }
}

// Sizes of whole 16-byte vectors and with a tail; windows one element in (unaligned: the
// one-element path) as the source, and as the destination.
TEST_CASE("cuda: dtype conversions and fill equal the CPU's bit for bit" * doctest::skip(kNoGpu)) {
  Rng rng(7);
  const std::vector<DType> types{DType::F32, DType::F64, DType::BF16, DType::I32};
  for (int64_t n : {int64_t(1000), int64_t(1003)}) {
    Tensor x = Tensor::randn({n + 1}, rng, 30.0);
    for (DType from : types) {
      Tensor src = x.to(from), src_gpu = src.to(Device::CUDA);
      for (DType to : types) {
        CAPTURE(n);
        CAPTURE(std::string(name_of(from)) + " -> " + name_of(to));
        for (int64_t off : {int64_t(0), int64_t(1)}) {
          CAPTURE(off);
          Tensor a = src.view(off, {n}).to(to), b = src_gpu.view(off, {n}).to(to).to(Device::CPU);
          CHECK(std::memcmp(a.raw(), b.raw(), size_t(n) * size_of(to)) == 0);
        }
        Tensor c = Tensor::zeros({n + 1}, to, Device::CUDA);  // into a window one element in
        c.view(1, {n}).copy_(src_gpu.view(0, {n}));
        const Tensor want = src.view(0, {n}).to(to), got = c.to(Device::CPU).view(1, {n});
        CHECK(std::memcmp(want.raw(), got.raw(), size_t(n) * size_of(to)) == 0);
      }
    }
  }
  for (DType t : types) {
    for (int64_t n : {int64_t(333), int64_t(4096)}) {
      CAPTURE(n);
      Tensor a = Tensor::full({n}, 2.75, t), b = Tensor::full({n}, 2.75, t, Device::CUDA).to(Device::CPU);
      CHECK(std::memcmp(a.raw(), b.raw(), size_t(n) * size_of(t)) == 0);
      Tensor c = Tensor::zeros({n}, t, Device::CUDA);
      c.view(1, {n - 2}).fill_(-1.5);  // unaligned, and the first and last elements stay 0
      Tensor d = Tensor::zeros({n}, t);
      d.view(1, {n - 2}).fill_(-1.5);
      CHECK(std::memcmp(c.to(Device::CPU).raw(), d.raw(), size_t(n) * size_of(t)) == 0);
    }
  }
}

// sym_weighted against its definition (X = G (.) W on and below the diagonal, S = X + X^T, in
// fp32, rounded once), exactly: C 37 and 130 (one element a thread), 72 and 128 (16-byte vectors;
// 72 has a partial tile). G's and W's upper triangles hold NaN, which must not be read.
TEST_CASE("cuda: sym_weighted equals X + X^T of the lower triangle" * doctest::skip(kNoGpu)) {
  Rng rng(29);
  const int64_t N = 3;
  for (int64_t C : {int64_t(37), int64_t(72), int64_t(128), int64_t(130)}) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      CAPTURE(C);
      CAPTURE(std::string(name_of(dtype)));
      // the values the GPU sees, as f32 on the host
      auto values = [&](Shape shape) { return Tensor::randn(shape, rng).to(dtype).to(DType::F32).to_vector<float>(); };
      std::vector<float> g = values({N, C, C}), w = values({C, C});
      for (int64_t b = 0; b < N; ++b)
        for (int64_t i = 0; i < C; ++i)
          for (int64_t j = i + 1; j < C; ++j) {
            g[size_t((b * C + i) * C + j)] = NAN;
            if (b == 0) w[size_t(i * C + j)] = NAN;
          }
      auto X = [&](int64_t b, int64_t i, int64_t j) {
        return j <= i ? g[size_t((b * C + i) * C + j)] * w[size_t(i * C + j)] : 0.f;
      };
      std::vector<float> sym(g.size());
      for (int64_t b = 0; b < N; ++b)
        for (int64_t i = 0; i < C; ++i)
          for (int64_t j = 0; j < C; ++j) sym[size_t((b * C + i) * C + j)] = X(b, i, j) + X(b, j, i);
      const Tensor gg = Tensor::from(g, {N, C, C}).to(dtype).to(Device::CUDA);
      const Tensor wg = Tensor::from(w, {C, C}).to(dtype).to(Device::CUDA);
      Tensor s;
      {
        Poison poison;
        s = Tensor::empty({N, C, C}, dtype, Device::CUDA);
      }
      if (dtype == DType::F32)
        avey::kernels::cuda::sym_weighted<float>(N, C, gg.data<float>(), wg.data<float>(), s.data<float>());
      else
        avey::kernels::cuda::sym_weighted<kernels::bf16>(N, C, gg.data<kernels::bf16>(), wg.data<kernels::bf16>(),
                                                   s.data<kernels::bf16>());
      const std::vector<float> got = s.to(DType::F32).to(Device::CPU).to_vector<float>();
      const std::vector<float> want = Tensor::from(sym, {N, C, C}).to(dtype).to(DType::F32).to_vector<float>();
      int64_t bad = 0;
      for (size_t k = 0; k < got.size(); ++k) bad += !(got[k] == want[k]);
      CHECK(bad == 0);
    }
  }
}

// row_max's ties (the first maximum wins), NaN (never the maximum; a row of NaN reports column
// 0), rows of -inf, for rows a warp takes (64 columns) and rows a block takes (700), against the
// CPU kernel on the same values (no NaN in column 0, where the CPU keeps it).
TEST_CASE("cuda: row_max ties, NaN and -inf match the CPU" * doctest::skip(kNoGpu)) {
  Rng rng(31);
  for (int64_t cols : {int64_t(64), int64_t(700)}) {
    const int64_t rows = 20;
    std::vector<float> x = Tensor::randn({rows, cols}, rng).to_vector<float>();
    auto at = [&](int64_t r, int64_t c) -> float& { return x[size_t(r * cols + c)]; };
    at(0, 5) = at(0, cols - 3) = 9.f;                     // a tie
    at(1, 3) = NAN, at(1, 40) = 8.f, at(1, 41) = NAN;      // NaN around the maximum
    for (int64_t c = 0; c < cols; ++c) at(2, c) = NAN;      // all NaN
    for (int64_t c = 0; c < cols; ++c) at(3, c) = -INFINITY;
    for (int64_t c = 0; c < cols; ++c) at(4, c) = 1.f;      // all equal
    at(5, cols - 1) = 7.f;                                  // the last column
    for (DType dtype : {DType::F32, DType::BF16}) {
      CAPTURE(cols);
      CAPTURE(std::string(name_of(dtype)));
      const Tensor xg = Tensor::from(x, {rows, cols}).to(dtype).to(Device::CUDA);
      const Tensor xc = xg.to(Device::CPU).to(DType::F32);
      Tensor y = Tensor::empty({rows}, dtype, Device::CUDA), yc = Tensor::empty({rows});
      Tensor idx = Tensor::empty({rows}, DType::I32, Device::CUDA), idxc = Tensor::empty({rows}, DType::I32);
      if (dtype == DType::F32)
        kernels::cuda::row_max<float>(rows, cols, xg.data<float>(), y.data<float>(), idx.data<int32_t>());
      else
        kernels::cuda::row_max<kernels::bf16>(rows, cols, xg.data<kernels::bf16>(), y.data<kernels::bf16>(),
                                               idx.data<int32_t>());
      kernels::cpu::row_max<float>(rows, cols, xc.data<float>(), yc.data<float>(), idxc.data<int32_t>());
      CHECK(idx.to(Device::CPU).to_vector<int32_t>() == idxc.to_vector<int32_t>());
      const std::vector<float> a = y.to(DType::F32).to(Device::CPU).to_vector<float>(), b = yc.to_vector<float>();
      for (size_t r = 0; r < a.size(); ++r) CHECK((a[r] == b[r] || (std::isnan(a[r]) && std::isnan(b[r]))));
    }
  }
}

TEST_CASE("cuda: tril_product_column_sums reads only the lower triangles and sums every batch entry" *
          doctest::skip(kNoGpu)) {
  Rng rng(23);
  for (int64_t C : {37, 136}) {      // not and a multiple of 8 (16-byte vectors of bf16)
    for (int64_t batch : {1, 70}) {  // one chunk of entries, three
      CAPTURE(C);
      CAPTURE(batch);
      Tensor a = Tensor::randn({batch, C, C}, rng), b = Tensor::randn({batch, C, C}, rng);
      std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
      std::vector<double> want(size_t(C * C), 0.0);
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < C; ++i)
          for (int64_t j = 0; j <= i; ++j) {
            const size_t at = size_t((n * C + i) * C + j);
            want[size_t(i * C + j)] += double(av[at]) * double(bv[at]);
          }
      for (int64_t n = 0; n < batch; ++n)  // above the diagonal: NaN, which must not be read
        for (int64_t i = 0; i < C; ++i)
          for (int64_t j = i + 1; j < C; ++j) av[size_t((n * C + i) * C + j)] = NAN;
      Tensor ag = Tensor::from(av, {batch, C, C}).to(Device::CUDA), bg = b.to(Device::CUDA);
      Tensor out = Tensor::empty({C, C}, DType::F32, Device::CUDA);
      avey::kernels::cuda::tril_product_column_sums<float>(batch, C, ag.data<float>(), bg.data<float>(), out.data<float>());
      std::vector<float> got = out.to(Device::CPU).to_vector<float>();
      double worst = 0.0;
      for (size_t e = 0; e < want.size(); ++e) {
        const double err = std::abs(double(got[e]) - want[e]);
        worst = std::isfinite(err) ? std::max(worst, err) : INFINITY;  // NaN: a value above the diagonal was read
      }
      CHECK(worst < 1e-4 * std::sqrt(double(batch)));
    }
  }
}

TEST_CASE("cuda: add_ (axpy) equals the CPU, vectorised and element by element" * doctest::skip(kNoGpu)) {
  Rng rng(29);
  for (int64_t n : {1000, 1001}) {  // whole 16-byte vectors, and not
    for (DType t : {DType::F32, DType::BF16}) {
      CAPTURE(n);
      Tensor y = Tensor::randn({n}, rng).to(t), x = Tensor::randn({n}, rng).to(t);
      Tensor yg = y.to(Device::CUDA), xg = x.to(Device::CUDA);
      add_(yg, xg, 0.5);
      Tensor want = add(y.to(DType::F32), scale(x.to(DType::F32), 0.5)).to(t).to(DType::F32);
      CHECK(yg.to(Device::CPU).to(DType::F32).to_vector<float>() == want.to_vector<float>());
    }
  }
}

TEST_CASE("cuda: accumulate_grads equals the CPU bit for bit, over many slots of any size and alignment" *
          doctest::skip(kNoGpu)) {
  Rng rng(17);
  // 40 slots (more than one launch takes) in one flat buffer at odd offsets: sizes 1..80, some
  // multiples of 4 at 16-byte offsets (the vector path), the rest not; parts fp32 and bf16.
  std::vector<int64_t> size, offset;
  int64_t total = 0;
  for (int s = 0; s < 40; ++s) {
    const int64_t n = s % 3 == 0 ? 4 * (s + 1) : s + 1;
    total += s % 3 == 0 ? (4 - total % 4) % 4 : 1;
    offset.push_back(total);
    size.push_back(n);
    total += n;
  }
  Tensor flat = Tensor::randn({total}, rng);
  Tensor flat_gpu = flat.to(Device::CUDA);
  std::vector<GradTarget> cpu, gpu;
  for (int s = 0; s < 40; ++s) {
    const int parts = 1 + s % 6;  // up to 6: more than a slot holds
    std::vector<Tensor> p, pg;
    for (int k = 0; k < parts; ++k) {
      Tensor x = Tensor::randn({size[size_t(s)]}, rng, 1.0, (s + k) % 2 ? DType::BF16 : DType::F32);
      p.push_back(x);
      pg.push_back(x.to(Device::CUDA));
    }
    cpu.push_back({flat.view(offset[size_t(s)], {size[size_t(s)]}), p, s % 4 == 1});
    gpu.push_back({flat_gpu.view(offset[size_t(s)], {size[size_t(s)]}), pg, s % 4 == 1});
  }
  accumulate_grads(cpu);
  accumulate_grads(gpu);
  CHECK(flat_gpu.to(Device::CPU).to_vector<float>() == flat.to_vector<float>());
}

TEST_CASE("cuda: reductions and scatters repeat bit for bit" * doctest::skip(kNoGpu)) {
  Rng rng(3);
  Tensor table = Tensor::randn({40, 64}, rng, 1.0, DType::F32, Device::CUDA).requires_grad_();
  std::vector<int32_t> idx(5000);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int32_t(i * 7 % 40);  // every row many times
  Tensor index = Tensor::from(idx, {5000}, Device::CUDA);
  Tensor x = Tensor::randn({3000, 64}, rng, 1.0, DType::F32, Device::CUDA).requires_grad_();
  Tensor gain = Tensor::randn({64}, rng, 1.0, DType::F32, Device::CUDA).requires_grad_();
  Tensor w = Tensor::randn({3000, 64}, rng, 1.0, DType::F32, Device::CUDA);
  auto once = [&] {  // gather's backward is scatter_add_rows; rmsnorm's gain gradient sums columns
    table.zero_grad();
    x.zero_grad();
    gain.zero_grad();
    Tensor loss = add(sum(square(gather_rows(table, index))), sum(mul(rmsnorm(x, gain, 1e-5), w)));
    loss.backward();
    return std::vector<std::vector<float>>{loss.to_vector<float>(), table.grad().to_vector<float>(),
                                           gain.grad().to_vector<float>(), x.grad().to_vector<float>()};
  };
  auto first = once();
  for (int k = 0; k < 3; ++k) CHECK(once() == first);
}

// gather_rows: rows of 3 (one element a thread) and of 8 (16-byte vectors in f32 and bf16): the
// bad index's row is NaN, the others are copied. scatter_add_rows: indices below 0 and past the
// table are reported and added nowhere; the rest are added (table rows 64 and 65: the sort's key
// bits hold the bad key, 64, in both).
TEST_CASE("cuda: an index out of range found on the GPU is a clear error" * doctest::skip(kNoGpu)) {
  for (int64_t cols : {int64_t(3), int64_t(8)}) {
    for (DType dtype : {DType::F32, DType::BF16}) {
      CAPTURE(cols);
      CAPTURE(std::string(name_of(dtype)));
      Tensor table = Tensor::full({4, cols}, 2.0, dtype, Device::CUDA);
      Tensor index = Tensor::from(std::vector<int32_t>{0, 4, 1, -1}, {4}, Device::CUDA);
      Tensor y = gather_rows(table, index);
      CHECK_THROWS_WITH_AS(y.to(Device::CPU), doctest::Contains("gather_rows"), std::out_of_range);
      CHECK_NOTHROW(kernels::cuda::synchronize());  // reported once, then cleared
      const std::vector<float> v = y.to(DType::F32).to(Device::CPU).to_vector<float>();
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < cols; ++c) CHECK((r % 2 == 1 ? std::isnan(v[size_t(r * cols + c)]) : v[size_t(r * cols + c)] == 2.f));
    }
  }
  for (int64_t table_rows : {int64_t(64), int64_t(65)}) {
    for (int64_t cols : {int64_t(3), int64_t(8)}) {
      CAPTURE(table_rows);
      CAPTURE(cols);
      const std::vector<int32_t> idx{5, -3, 63, 5, int32_t(table_rows), 1000, 0};
      const int64_t n = int64_t(idx.size());
      Tensor g = Tensor::full({n, cols}, 1.0, DType::F32, Device::CUDA);
      Tensor gt = Tensor::zeros({table_rows, cols}, DType::F32, Device::CUDA);
      Tensor index = Tensor::from(idx, {n}, Device::CUDA);
      kernels::cuda::scatter_add_rows<float>(n, cols, g.data<float>(), index.data<int32_t>(), gt.data<float>(),
                                             table_rows);
      CHECK_THROWS_WITH_AS(kernels::cuda::synchronize(), doctest::Contains("scatter_add_rows"), std::out_of_range);
      const std::vector<float> v = gt.to(Device::CPU).to_vector<float>();
      for (int64_t r = 0; r < table_rows; ++r)
        CHECK(v[size_t(r * cols)] == (r == 5 ? 2.f : (r == 63 || r == 0 ? 1.f : 0.f)));
    }
  }
}

TEST_CASE("cuda: AdamW and sums of squares match the CPU kernels" * doctest::skip(kNoGpu)) {
  Rng rng(11);
  for (int64_t n : {int64_t(100000), int64_t(100003)}) {  // four elements a thread, and one
    CAPTURE(n);
    Tensor p = Tensor::randn({n}, rng), g = Tensor::randn({n}, rng), m = Tensor::randn({n}, rng, 0.1);
    Tensor v = Tensor::uniform({n}, rng, 0.0, 0.01);
    std::vector<uint8_t> mask(static_cast<size_t>(n));
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 3 != 0;  // decay two elements in three
    Tensor pg = p.to(Device::CUDA), gg = g.to(Device::CUDA), mg = m.to(Device::CUDA), vg = v.to(Device::CUDA);
    Tensor half = Tensor::empty({n}, DType::BF16, Device::CUDA);
    void* mask_gpu = kernels::cuda::allocate(size_t(n));
    kernels::cuda::copy_to_device(mask_gpu, mask.data(), size_t(n));
    const double b1 = 0.9, b2 = 0.95, bias1 = 1 - b1 * b1, bias2 = 1 - b2 * b2, scale = 0.5;
    Tensor scale_gpu = Tensor::from(std::vector<double>{scale}, {1}, Device::CUDA);
    kernels::cpu::adamw<float>({.n = n, .p = p.data<float>(), .g = g.data<float>(), .m = m.data<float>(),
                                .v = v.data<float>(), .decay = mask.data(), .lr = 3e-3, .b1 = b1, .b2 = b2, .eps = 1e-8,
                                .wd = 0.1, .bias1 = bias1, .bias2 = bias2, .grad_scale = &scale});
    kernels::cuda::adamw<float>({.n = n, .p = pg.data<float>(), .g = gg.data<float>(), .m = mg.data<float>(),
                                 .v = vg.data<float>(), .decay = static_cast<const uint8_t*>(mask_gpu),
                                 .p_bf16 = half.data<kernels::bf16>(), .lr = 3e-3, .b1 = b1, .b2 = b2, .eps = 1e-8,
                                 .wd = 0.1, .bias1 = bias1, .bias2 = bias2, .grad_scale = scale_gpu.data<double>()});
    CHECK(rel_diff(pg, p) < 1e-6);
    CHECK(rel_diff(mg, m) < 1e-6);
    CHECK(rel_diff(vg, v) < 1e-6);
    CHECK(rel_diff(half, p.to(DType::BF16)) < 1e-2);
    kernels::cuda::release(mask_gpu, size_t(n));
  }

  const int64_t n = 100003;
  Tensor g = Tensor::randn({n}, rng), gg = g.to(Device::CUDA);
  const double want = kernels::cpu::sum_squares<float>(n, g.data<float>());
  const double got = kernels::cuda::sum_squares<float>(n, gg.data<float>());
  CHECK(std::abs(got - want) <= 1e-12 * want);
  const std::vector<int64_t> offset{0, 10, 5000, 99000}, count{10, 4990, 94000, 1003};
  std::vector<double> seg_want(4), seg_got(4);
  kernels::cpu::segment_sum_squares<float>(4, offset.data(), count.data(), g.data<float>(), seg_want.data());
  kernels::cuda::segment_sum_squares<float>(4, offset.data(), count.data(), gg.data<float>(), seg_got.data());
  for (int s = 0; s < 4; ++s) CHECK(std::abs(seg_got[size_t(s)] - seg_want[size_t(s)]) <= 1e-12 * seg_want[size_t(s)]);
  // The clip on the device: the norm has the bits of the host-summed one; the coefficient follows.
  for (double max_norm : {1.0, 1e9, 0.0}) {
    const std::vector<double> clip = optim::clip_grad_norm(gg, max_norm).stats.to(Device::CPU).to_vector<double>();
    CHECK(clip[0] == std::sqrt(got));
    CHECK(clip[1] == optim::clip_scale(clip[0], max_norm));
  }
}

TEST_CASE("cuda: the caching allocator reuses blocks and counts bytes" * doctest::skip(kNoGpu)) {
  kernels::cuda::synchronize();
  const size_t base = kernels::cuda::bytes_in_use();
  kernels::cuda::reset_peak();
  void* a = kernels::cuda::allocate(1000);
  CHECK(kernels::cuda::bytes_in_use() == base + 1024);
  kernels::cuda::release(a, 1000);
  CHECK(kernels::cuda::bytes_in_use() == base);
  void* b = kernels::cuda::allocate(900);  // same size class: the same block comes back
  CHECK(b == a);
  void* c = kernels::cuda::allocate(3 << 20);
  CHECK(kernels::cuda::peak_bytes_in_use() >= base + 1024 + (3u << 20));
  kernels::cuda::release(b, 900);
  kernels::cuda::release(c, 3 << 20);
  kernels::cuda::empty_cache();
  CHECK(kernels::cuda::bytes_in_use() == base);
}

#endif
