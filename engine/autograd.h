// Autograd: a define-by-run tape.
//
// Every differentiable op that sees an input requiring a gradient records a Node on its
// output: the op's name, one edge per input (the input's own Node, or null when that input
// needs no gradient) and a backward function that maps dL/d(output) to dL/d(each input).
// The backward function captures whatever the op saved for it; the Node drops it as soon as
// backward has run, so saved activations are freed as the backward pass moves down the graph.
//
// backward(loss) walks the graph in reverse topological order, sums the gradients arriving
// at each Node, calls its hooks, then its backward function. Leaves (parameters) have an
// accumulator Node that adds into their .grad, so calling backward twice accumulates. A leaf
// whose .grad is an fp32 buffer (the model's flat gradient) and that has no hooks gets its
// gradients at the end, all leaves in one accumulate_grads pass (engine/ops.h).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;
  std::vector<std::shared_ptr<Node>> next;  // per input: where its gradient goes (null: nowhere)
  std::vector<Shape> input_shapes;          // to check what backward returns
  BackwardFn backward;                      // null for leaf accumulators, and once it has run
  std::weak_ptr<TensorImpl> leaf;           // accumulators: the parameter they feed
  std::vector<std::pair<std::string, std::function<void(const Tensor&)>>> hooks;
};

// Gradient recording is on by default; a NoGrad scope turns it off (evaluation, the
// optimizer step, and backward functions themselves).
bool grad_enabled();
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// True when an op on these inputs must be recorded.
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `out` the result of op `name` over `inputs`. Does nothing when no input needs a grad.
void record(Tensor& out, const std::string& name, const std::vector<Tensor>& inputs, BackwardFn backward);

// The Node a gradient for t flows into: the op that made it, or (for a leaf) its accumulator.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// Runs backward from `root`, seeding it with `seed` (ones when undefined; root must then be scalar).
void backward(const Tensor& root, const Tensor& seed = Tensor());

}  // namespace engine
