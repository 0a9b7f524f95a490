// Tensor: a contiguous, row-major array of one DType on one Device, over shared storage.
//
// A Tensor is a cheap handle (a shared pointer to its TensorImpl): copying it aliases the
// same data. Views (reshape, slice_rows, Tensor::view) share the storage at an offset.
// Everything needed for autograd lives on the impl too: whether it requires a gradient, the
// Node that produced it (grad_fn), and for leaves the accumulated gradient.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace engine {

struct Node;
class Rng;

// Raw memory on one device. Freed (or returned to the GPU's caching allocator) when the last
// tensor that views it goes away.
struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
};

// Copies nbytes between any two devices (raw storage: Storage::data).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements of dtype
  Shape shape;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;           // the op that made it; null for leaves
  std::shared_ptr<Node> grad_accumulator;  // leaves only: where their gradient arrives
  std::shared_ptr<TensorImpl> grad;        // leaves only: accumulated gradient (+= each backward)
  bool stale = false;  // a gradient after discard_grad: old values, overwritten by the next gradient
  bool unit_seed = false;  // backward()'s own seed d(root)/d(root) = 1: its value is known on the host
  std::string name;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: "no value" (e.g. no gradient for this input)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  // From host values; the dtype follows T (float, double, int32_t).
  template <class T>
  static Tensor from(const std::vector<T>& values, const Shape& shape, Device device = Device::CPU);
  static Tensor randn(const Shape& shape, Rng& rng, double std = 1.0, DType dtype = DType::F32,
                      Device device = Device::CPU);
  static Tensor uniform(const Shape& shape, Rng& rng, double lo, double hi, DType dtype = DType::F32,
                        Device device = Device::CPU);

  // ---- description ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t ndim() const { return int64_t(shape().size()); }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device() == Device::CUDA; }
  std::string describe() const;  // "f32[2, 3] cpu"

  // ---- data ----
  template <class T> T* data();              // typed pointer (checks the dtype)
  template <class T> const T* data() const;
  void* raw();
  const void* raw() const;
  template <class T> std::vector<T> to_vector() const;  // host copy (T must match the dtype)
  double item() const;                                // the one element, as a double

  // ---- copies and views (not recorded by autograd; see ops.h for differentiable versions) ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;
  Tensor detach() const;                                   // same data, no autograd history
  Tensor view(int64_t offset, const Shape& shape) const;  // a window of this tensor's elements
  void copy_(const Tensor& src);  // element-wise copy into this tensor (converting the dtype on one device)
  void fill_(double value);

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // leaves only
  Tensor grad() const;                     // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);          // e.g. a view into a flat gradient buffer
  void zero_grad();
  // zero_grad without the fill: the next gradient a backward brings is written into grad, not
  // added (PyTorch's zero_grad(set_to_none=True), for a gradient that lives in a flat buffer);
  // grad() reads zeros until then. The mark is on the gradient tensor, so leaves that share one
  // (a master weight and its bf16 working copy) see it alike. Saves a pass over the buffer and a
  // read of it each step.
  void discard_grad();
  void backward() const;                   // from a scalar: d(this)/d(this) = 1
  Node* grad_fn() const;
  const std::string& name() const;
  Tensor& set_name(const std::string& name);
  // Calls fn with d(loss)/d(this tensor) when backward reaches it. Hooks are keyed by name:
  // registering the same name again replaces it.
  void register_hook(const std::string& name, std::function<void(const Tensor&)> fn) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Throws std::invalid_argument with a message that names the op: "matmul: expected ..., got f32[2, 3] cpu".
[[noreturn]] void fail(const std::string& op, const std::string& what);
void check_same_device(const std::string& op, const Tensor& a, const Tensor& b);
void check_same_dtype(const std::string& op, const Tensor& a, const Tensor& b);
void check_same_shape(const std::string& op, const Tensor& a, const Tensor& b);
void check_floating(const std::string& op, const Tensor& a);

}  // namespace engine
