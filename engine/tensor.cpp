#include "engine/tensor.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cpu_allocator.h"
#include "kernels/kernels.h"
#include "engine/random.h"
#ifdef AVEY_HAVE_CUDA
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/memory.h"
#endif

namespace engine {

// ---------------------------------------------------------------- shapes and errors

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string to_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

void fail(const std::string& op, const std::string& what) { throw std::invalid_argument(op + ": " + what); }

void check_same_device(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device()) fail(op, "tensors on different devices: " + a.describe() + " and " + b.describe());
}
void check_same_dtype(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) fail(op, "dtypes differ: " + a.describe() + " and " + b.describe());
}
void check_same_shape(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) fail(op, "shapes differ: " + a.describe() + " and " + b.describe());
}
void check_floating(const std::string& op, const Tensor& a) {
  if (!is_floating(a.dtype())) fail(op, "needs a floating-point tensor, got " + a.describe());
}

// ---------------------------------------------------------------- storage

Storage::Storage(size_t nbytes_, Device device_) : nbytes(nbytes_), device(device_) {
  if (nbytes == 0) return;
  if (device == Device::CPU) {
    data = cpu_allocator::allocate(nbytes);
  } else {
#ifdef AVEY_HAVE_CUDA
    data = kernels::cuda::allocate(nbytes);
#else
    fail("tensor", "this build has no CUDA backend");
#endif
  }
}

Storage::~Storage() {
  if (!data) return;
  if (device == Device::CPU) {
    cpu_allocator::release(data, nbytes);
  } else {
#ifdef AVEY_HAVE_CUDA
    kernels::cuda::release(data, nbytes);
#endif
  }
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef AVEY_HAVE_CUDA
  if (dst_dev == Device::CUDA && src_dev == Device::CUDA) kernels::cuda::copy_on_device(dst, src, nbytes);
  else if (dst_dev == Device::CUDA) kernels::cuda::copy_to_device(dst, src, nbytes);
  else kernels::cuda::copy_to_host(dst, src, nbytes);
#else
  fail("copy", "this build has no CUDA backend");
#endif
}

// ---------------------------------------------------------------- creation

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) fail("empty", "negative dimension in " + to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(engine::numel(shape)) * size_of(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

template <class T>
Tensor Tensor::from(const std::vector<T>& values, const Shape& shape, Device device) {
  if (int64_t(values.size()) != engine::numel(shape))
    fail("from", fmt::format("{} values for shape {}", values.size(), to_string(shape)));
  Tensor t = empty(shape, dtype_of<T>(), Device::CPU);
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(T));
  return device == Device::CPU ? t : t.to(device);
}
template Tensor Tensor::from(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from(const std::vector<double>&, const Shape&, Device);
template Tensor Tensor::from(const std::vector<int32_t>&, const Shape&, Device);

Tensor Tensor::randn(const Shape& shape, Rng& rng, double std, DType dtype, Device device) {
  std::vector<double> v(size_t(engine::numel(shape)));
  for (double& x : v) x = rng.normal() * std;
  return from(v, shape).to(dtype).to(device);
}

Tensor Tensor::uniform(const Shape& shape, Rng& rng, double lo, double hi, DType dtype, Device device) {
  std::vector<double> v(size_t(engine::numel(shape)));
  for (double& x : v) x = lo + (hi - lo) * rng.uniform();
  return from(v, shape).to(dtype).to(device);
}

// ---------------------------------------------------------------- description and data

const TensorImpl& Tensor::checked() const {
  if (!impl_) throw std::invalid_argument("tensor: use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const { return checked().shape; }
int64_t Tensor::numel() const { return engine::numel(shape()); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().storage->device; }

int64_t Tensor::size(int64_t dim) const {
  int64_t n = ndim();
  if (dim < -n || dim >= n) fail("size", fmt::format("dim {} out of range for {}", dim, describe()));
  return shape()[size_t(dim < 0 ? dim + n : dim)];
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined";
  return fmt::format("{}{} {}", name_of(dtype()), to_string(shape()), name_of(device()));
}

void* Tensor::raw() { return static_cast<char*>(checked().storage->data) + impl_->offset * int64_t(size_of(dtype())); }
const void* Tensor::raw() const {
  return static_cast<const char*>(checked().storage->data) + impl_->offset * int64_t(size_of(dtype()));
}

template <class T> T* Tensor::data() {
  if (dtype() != dtype_of<T>()) fail("data", fmt::format("asked for {} elements of {}", name_of(dtype_of<T>()), describe()));
  return static_cast<T*>(raw());
}
template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template bf16* Tensor::data<bf16>();
template int32_t* Tensor::data<int32_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const bf16* Tensor::data<bf16>() const;
template const int32_t* Tensor::data<int32_t>() const;

template <class T> std::vector<T> Tensor::to_vector() const {
  if (dtype() != dtype_of<T>()) fail("to_vector", fmt::format("asked for {} from {}", name_of(dtype_of<T>()), describe()));
  std::vector<T> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::CPU, raw(), device(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<bf16> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;

double Tensor::item() const {
  if (numel() != 1) fail("item", "needs one element, got " + describe());
  Tensor h = to(Device::CPU).to(dtype() == DType::I32 ? DType::I32 : DType::F64);
  return dtype() == DType::I32 ? double(h.data<int32_t>()[0]) : h.data<double>()[0];
}

// ---------------------------------------------------------------- copies and views

Tensor Tensor::to(Device device_) const {
  if (device_ == device()) return *this;
  Tensor out = empty(shape(), dtype(), device_);
  copy_bytes(out.raw(), device_, raw(), device(), size_t(numel()) * size_of(dtype()));
  return out;
}

// Calls f(T{}) with T the C++ element type of dtype t.
template <class F>
static void visit(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F64: f(double{}); break;
    case DType::BF16: f(bf16{}); break;
    case DType::I32: f(int32_t{}); break;
  }
}

namespace {
// dst = src element-wise, converted to dst's dtype (one device, same number of elements).
void convert_into(const Tensor& src, Tensor& dst) {
  visit(src.dtype(), [&](auto s) {
    visit(dst.dtype(), [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      if (src.device() == Device::CPU) {
        kernels::cpu::convert(src.numel(), src.data<S>(), dst.data<D>());
      } else {
#ifdef AVEY_HAVE_CUDA
        kernels::cuda::convert(src.numel(), src.data<S>(), dst.data<D>());
#endif
      }
    });
  });
}
}  // namespace

Tensor Tensor::to(DType dtype_) const {
  if (dtype_ == dtype()) return *this;
  Tensor out = empty(shape(), dtype_, device());
  convert_into(*this, out);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked().storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::view(int64_t offset, const Shape& shape_) const {
  if (offset < 0 || offset + engine::numel(shape_) > numel())
    fail("view", fmt::format("offset {} shape {} outside {}", offset, to_string(shape_), describe()));
  Tensor v = detach();
  v.impl_->offset += offset;
  v.impl_->shape = shape_;
  return v;
}

void Tensor::copy_(const Tensor& src) {
  if (src.numel() != numel() || (src.dtype() != dtype() && src.device() != device()))
    fail("copy_", "source " + src.describe() + " does not fit " + describe());
  if (src.dtype() != dtype()) return convert_into(src, *this);
  copy_bytes(raw(), device(), src.raw(), src.device(), size_t(numel()) * size_of(dtype()));
}

void Tensor::fill_(double value) {
  visit(dtype(), [&](auto z) {
    using T = decltype(z);
    if (device() == Device::CPU) {
      kernels::cpu::fill(numel(), data<T>(), value);
    } else {
#ifdef AVEY_HAVE_CUDA
      kernels::cuda::fill(numel(), data<T>(), value);
#endif
    }
  });
}

// ---------------------------------------------------------------- autograd

bool Tensor::requires_grad() const { return checked().requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  if (checked().grad_fn) fail("requires_grad_", "only leaf tensors can be marked (this one is the result of an op)");
  if (on) check_floating("requires_grad_", *this);
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!checked().grad) return Tensor();
  Tensor g(impl_->grad);
  if (impl_->grad->stale) g.fill_(0.0), impl_->grad->stale = false;
  return g;
}

void Tensor::set_grad(const Tensor& g) {
  // A bf16 tensor may keep an f32 gradient (mixed precision: fp32 gradients of bf16 working weights).
  const bool dtype_ok = g.defined() && (g.dtype() == dtype() || (dtype() == DType::BF16 && g.dtype() == DType::F32));
  if (g.defined() && (g.shape() != shape() || !dtype_ok || g.device() != device()))
    fail("set_grad", "gradient " + g.describe() + " does not match " + describe());
  checked();
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  if (checked().grad) Tensor(impl_->grad).fill_(0.0), impl_->grad->stale = false;
}

void Tensor::discard_grad() {
  if (checked().grad) impl_->grad->stale = true;
}

void Tensor::backward() const { engine::backward(*this); }

Node* Tensor::grad_fn() const { return checked().grad_fn.get(); }
const std::string& Tensor::name() const { return checked().name; }
Tensor& Tensor::set_name(const std::string& n) {
  checked();
  impl_->name = n;
  return *this;
}

void Tensor::register_hook(const std::string& hook_name, std::function<void(const Tensor&)> fn) const {
  if (!requires_grad()) fail("register_hook", "tensor '" + name() + "' does not require a gradient");
  Node* node = gradient_edge(*this).get();
  for (auto& [n, f] : node->hooks)
    if (n == hook_name) {
      f = std::move(fn);
      return;
    }
  node->hooks.emplace_back(hook_name, std::move(fn));
}

}  // namespace engine
