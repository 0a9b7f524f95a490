// Studying gradients layer by layer, from C++: a small Avey model takes a few AdamW steps on
// Moby Dick, and a named hook on every parameter records its gradient norm as backward reaches
// it. Prints how each layer's gradient changes over the first steps.
//
//   build/examples/gradient_study            (after scripts/setup)
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "avey/model.h"
#include "data/data.h"
#include "optim/adamw.h"

int main() {
  // A model a tenth the size of `tiny`, with the byte tokenizer: a step takes a fraction of a second.
  avey::Config cfg = avey::Config::preset("tiny");
  cfg.vocab_size = 257;
  cfg.d_embed = 64;
  cfg.n_layers = 3;
  cfg.split_size = 16;
  cfg.top_k = 3;
  avey::Model model(cfg);
  model.init(11);

  auto tok = data::load_tokenizer("bytes");
  data::CorpusShards shards = data::prepare_corpus("moby-dick", *tok, false);
  data::Loader loader(data::TokenStream::open({shards.train}), 4, 128, 11);

  // One hook per parameter: backward calls it with d(loss)/d(parameter) as it gets there.
  std::map<std::string, double> norm;
  for (avey::Param& p : model.params())
    p.value.register_hook("norm", [&norm, name = p.name](const engine::Tensor& g) {
      double s = 0;
      for (float x : g.to_vector<float>()) s += double(x) * x;
      norm[name] = std::sqrt(s);
    });

  std::vector<optim::Segment> segments;
  for (avey::Param& p : model.params())
    segments.push_back(optim::segment_of(p.name, p.value, model.flat_params()));
  optim::AdamW opt(model.flat_params(), segments);

  const int steps = 5;
  std::map<std::string, std::vector<double>> history;
  for (int s = 0; s < steps; ++s) {
    data::Batch b = loader.next();
    model.zero_grad();
    engine::Tensor loss = model.loss(engine::Tensor::from(b.inputs, {b.B, b.T}), engine::Tensor::from(b.targets, {b.B, b.T}));
    loss.backward();
    opt.step(model.flat_grads(), 1e-3);
    for (auto& [name, n] : norm) history[name].push_back(n);
    history["(loss)"].push_back(loss.item());
  }
  fmt::print("{:<42}", "gradient norm at step");
  for (int s = 1; s <= steps; ++s) fmt::print("{:>10}", s);
  fmt::print("\n{:<42}", "(loss)");
  for (double l : history["(loss)"]) fmt::print("{:>10.4f}", l);
  fmt::print("\n");
  for (const avey::Param& p : model.params()) {
    fmt::print("{:<42}", p.name);
    for (double n : history[p.name]) fmt::print("{:>10.4f}", n);
    fmt::print("\n");
  }
  return 0;
}
