#include "engine/autograd.h"

#include <unordered_map>

#include "engine/ops.h"

namespace engine {

namespace {
thread_local bool g_grad_enabled = true;

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  NoGrad no_grad;
  if (!leaf.grad) {
    leaf.grad = g.clone().impl_ptr();
    return;
  }
  Tensor acc(leaf.grad);
  if (leaf.grad->stale) {  // discard_grad: this gradient replaces the old values
    acc.copy_(g);
    leaf.grad->stale = false;
    return;
  }
  add_(acc, g);
}
}  // namespace

// The Node a gradient for tensor t flows into: its op's Node, or its leaf accumulator.
std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->grad_accumulator) {
    impl->grad_accumulator = std::make_shared<Node>();
    impl->grad_accumulator->op = "accumulate_grad";
    impl->grad_accumulator->leaf = t.impl_ptr();
  }
  return impl->grad_accumulator;
}

bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const std::string& name, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->op = name;
  for (const Tensor& t : inputs) {
    node->next.push_back(t.defined() && t.requires_grad() ? gradient_edge(t) : nullptr);
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

void backward(const Tensor& root, const Tensor& seed) {
  if (!root.requires_grad())
    fail("backward", "the tensor does not require a gradient (nothing it depends on has requires_grad)");
  Tensor g0 = seed;
  if (!g0.defined()) {
    if (root.numel() != 1) fail("backward", "needs a scalar, got " + root.describe());
    g0 = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
    g0.impl()->unit_seed = true;  // a backward function may skip multiplying by it (no read from the GPU)
  }
  std::shared_ptr<Node> start = gradient_edge(root);

  // Count, for every node, how many edges lead into it: it runs once all have delivered.
  std::unordered_map<Node*, int> pending_inputs;
  std::vector<Node*> stack{start.get()};
  pending_inputs[start.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& nx : n->next) {
      if (!nx) continue;
      if (pending_inputs.count(nx.get()) == 0) {
        pending_inputs[nx.get()] = 0;
        stack.push_back(nx.get());
      }
      pending_inputs[nx.get()]++;
    }
  }

  NoGrad no_grad;  // backward functions compute with ops, but record nothing
  std::unordered_map<Node*, Tensor> grads{{start.get(), g0}};
  // The gradients reaching a parameter whose gradient lives in an fp32 buffer (and that has no
  // hooks, which want the summed gradient) are not summed on arrival: each is kept, and once the
  // walk is done accumulate_grads adds every parameter's parts into its buffer in one pass.
  std::unordered_map<Node*, std::vector<Tensor>> leaf_parts;
  std::vector<GradTarget> targets;
  auto collects = [&leaf_parts](Node& n, const Tensor& g) {
    if (leaf_parts.count(&n)) return true;
    auto leaf = n.leaf.lock();
    return leaf && n.hooks.empty() && leaf->grad && leaf->grad->dtype == DType::F32 &&
           (g.dtype() == DType::F32 || g.dtype() == DType::BF16) && g.device() == Tensor(leaf->grad).device();
  };
  std::vector<std::shared_ptr<Node>> ready{start};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    if (auto it = leaf_parts.find(node.get()); it != leaf_parts.end()) {
      auto leaf = node->leaf.lock();
      targets.push_back({Tensor(leaf->grad), std::move(it->second), leaf->grad->stale});
      leaf_parts.erase(it);
      continue;
    }
    Tensor g;
    if (auto it = grads.find(node.get()); it != grads.end()) {
      g = std::move(it->second);
      grads.erase(it);
    }
    std::vector<Tensor> input_grads(node->next.size());
    if (g.defined()) {  // undefined: every user of this node returned no gradient
      for (auto& [name, hook] : node->hooks) hook(g);
      if (auto leaf = node->leaf.lock()) {
        accumulate_into_leaf(*leaf, g);
        continue;
      }
      if (!node->backward)
        fail("backward", "op '" + node->op + "' was already backpropagated (its saved tensors are freed)");
      input_grads = node->backward(g);
      g = Tensor();
      if (input_grads.size() != node->next.size())
        fail("backward", "op '" + node->op + "' returned the wrong number of gradients");
    }
    node->backward = nullptr;  // frees what the op saved for backward
    for (size_t i = 0; i < node->next.size(); ++i) {
      const std::shared_ptr<Node>& nx = node->next[i];
      if (!nx) continue;
      Tensor& gi = input_grads[i];
      if (gi.defined()) {
        if (gi.shape() != node->input_shapes[i])
          fail("backward", "op '" + node->op + "' returned a gradient " + to_string(gi.shape()) + " for input " +
                               std::to_string(i) + " of shape " + to_string(node->input_shapes[i]));
        auto it = grads.find(nx.get());
        if (collects(*nx, gi))
          leaf_parts[nx.get()].push_back(gi);
        else if (it == grads.end())
          grads.emplace(nx.get(), gi);
        else if (it->second.dtype() == gi.dtype())
          it->second = add(it->second, gi);
        else  // mixed precision: a bf16 and an f32 gradient for one tensor meet in f32
          it->second = add(it->second.to(DType::F32), gi.to(DType::F32));
      }
      if (--pending_inputs[nx.get()] == 0) ready.push_back(nx);
    }
  }
  accumulate_grads(targets);
  for (GradTarget& t : targets) t.grad.impl()->stale = false;
}

}  // namespace engine
