// add, sub, mul, div (with the narrow broadcasting of ops.h), scale, add_scalar, add_, and the
// parameters' gradients (accumulate_grads).
//
// y = a (op) b:   dy/da = 1, 1, b, 1/b;   dy/db = 1, -1, a, -a/b^2 = -y/b.
// Where b was broadcast, its gradient is summed over the broadcast rows or columns.
#include "engine/dispatch.h"
#include "engine/ops.h"

namespace engine {

using kernels::Binary;
using kernels::Broadcast;

namespace {

Broadcast broadcast_of(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.shape() == b.shape()) return Broadcast::None;
  if (b.numel() == 1) return Broadcast::Scalar;
  if (a.ndim() >= 1 && b.ndim() == 1 && b.size(0) == a.size(-1)) return Broadcast::Row;
  if (a.ndim() >= 1 && b.ndim() == a.ndim() && b.size(-1) == 1 &&
      std::equal(a.shape().begin(), a.shape().end() - 1, b.shape().begin()))
    return Broadcast::Column;
  fail(op, "cannot broadcast " + b.describe() + " over " + a.describe() +
               " (b must match a, be a row over its last dim, a column [..., 1], or one element)");
}

int64_t cols_of(const Tensor& a) { return a.ndim() == 0 ? 1 : a.size(-1); }

Tensor binary_kernel(Binary f, Broadcast bc, const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  int64_t cols = cols_of(a), rows = cols ? a.numel() / cols : 0;
  AVEY_DISPATCH("binary", a, binary, f, bc, rows, cols, a.data<T>(), b.data<T>(), y.data<T>());
  return y;
}

// The gradient of b: g (shaped like a) summed over what the broadcast repeated.
Tensor reduce_like(const Tensor& g, Broadcast bc, const Tensor& b) {
  if (bc == Broadcast::None) return g;
  Tensor gb = Tensor::empty(b.shape(), g.dtype(), g.device());
  int64_t cols = cols_of(g), rows = g.numel() / cols;
  AVEY_DISPATCH("reduce", g, reduce_to, bc, rows, cols, g.data<T>(), gb.data<T>());
  return gb;
}

Tensor binary_op(const std::string& op, Binary f, const Tensor& a, const Tensor& b) {
  check_same_device(op, a, b);
  check_same_dtype(op, a, b);
  check_floating(op, a);
  Broadcast bc = broadcast_of(op, a, b);
  Tensor y = binary_kernel(f, bc, a, b);
  Tensor y_saved = f == Binary::Div ? y.detach() : Tensor();  // detached: no cycle through y's own node
  record(y, op, {a, b}, [f, bc, a, b, y_saved](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    switch (f) {
      case Binary::Add:
        if (need_a) ga = g;
        if (need_b) gb = reduce_like(g, bc, b);
        break;
      case Binary::Sub:
        if (need_a) ga = g;
        if (need_b) gb = scale(reduce_like(g, bc, b), -1.0);
        break;
      case Binary::Mul:
        if (need_a) ga = binary_kernel(Binary::Mul, bc, g, b);
        if (need_b) gb = reduce_like(binary_kernel(Binary::Mul, Broadcast::None, g, a), bc, b);
        break;
      case Binary::Div:
        if (need_a) ga = binary_kernel(Binary::Div, bc, g, b);
        if (need_b) {
          Tensor gy_over_b = binary_kernel(Binary::Div, bc, binary_kernel(Binary::Mul, Broadcast::None, g, y_saved), b);
          gb = scale(reduce_like(gy_over_b, bc, b), -1.0);
        }
        break;
    }
    return {ga, gb};
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op("add", Binary::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op("sub", Binary::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op("mul", Binary::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op("div", Binary::Div, a, b); }

Tensor scale(const Tensor& a, double s) {
  check_floating("scale", a);
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  AVEY_DISPATCH("scale", a, scale, a.numel(), s, a.data<T>(), y.data<T>());
  record(y, "scale", {a}, [s](const Tensor& g) -> std::vector<Tensor> { return {scale(g, s)}; });
  return y;
}

Tensor add_scalar(const Tensor& a, double s) {
  check_floating("add_scalar", a);
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  AVEY_DISPATCH("add_scalar", a, add_scalar, a.numel(), s, a.data<T>(), y.data<T>());
  record(y, "add_scalar", {a}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return y;
}

void add_(Tensor& y, const Tensor& x, double alpha) {
  check_same_device("add_", y, x);
  if (y.dtype() == DType::F32 && x.dtype() == DType::BF16 && alpha == 1.0) {  // mixed precision: bf16 into fp32
    check_same_shape("add_", y, x);
    if (y.device() == Device::CPU) {
      kernels::cpu::accumulate(y.numel(), x.data<kernels::bf16>(), y.data<float>());
    } else {
#ifdef AVEY_HAVE_CUDA
      kernels::cuda::accumulate(y.numel(), x.data<kernels::bf16>(), y.data<float>());
#endif
    }
    return;
  }
  check_same_dtype("add_", y, x);
  check_same_shape("add_", y, x);
  AVEY_DISPATCH("add_", y, axpy, y.numel(), alpha, x.data<T>(), y.data<T>());
}

void accumulate_grads(const std::vector<GradTarget>& targets) {
  std::vector<kernels::GradSlot> slots[2];  // [CPU, CUDA]
  std::vector<Tensor> folded;               // partial sums of targets with many parts
  for (const GradTarget& t : targets) {
    if (t.grad.dtype() != DType::F32 || t.parts.empty())
      fail("accumulate_grads", "needs an fp32 gradient and at least one part, got " + t.grad.describe());
    std::vector<Tensor> parts = t.parts;
    while (parts.size() > size_t(kernels::kGradParts)) {  // sum the first ones first: the same order
      Tensor head = Tensor::empty(t.grad.shape(), DType::F32, t.grad.device());
      accumulate_grads({{head, std::vector<Tensor>(parts.begin(), parts.begin() + kernels::kGradParts), true}});
      parts.erase(parts.begin(), parts.begin() + kernels::kGradParts);
      parts.insert(parts.begin(), head);
      folded.push_back(head);
    }
    Tensor grad = t.grad;  // a handle on the same storage
    kernels::GradSlot g;
    g.dst = grad.data<float>();
    g.n = t.grad.numel();
    g.replace = t.replace;
    for (const Tensor& p : parts) {
      check_same_device("accumulate_grads", t.grad, p);
      if (p.numel() != g.n || (p.dtype() != DType::F32 && p.dtype() != DType::BF16))
        fail("accumulate_grads", "a part " + p.describe() + " does not fit the gradient " + t.grad.describe());
      g.part_bf16[g.parts] = p.dtype() == DType::BF16;
      g.part[g.parts++] = p.raw();
    }
    slots[t.grad.device() == Device::CPU ? 0 : 1].push_back(g);
  }
  if (!slots[0].empty()) kernels::cpu::accumulate_grads(int(slots[0].size()), slots[0].data());
#ifdef AVEY_HAVE_CUDA
  if (!slots[1].empty()) kernels::cuda::accumulate_grads(int(slots[1].size()), slots[1].data());
#endif
}

}  // namespace engine
