#include "pyflame_vision/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/memory.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {

namespace {
// Requests of at least this size are checked against the system's available
// memory first (reading /proc/meminfo costs microseconds; small ones are not
// worth it and fail through aligned_alloc if they must).
constexpr uint64_t kCheckedAllocation = uint64_t{64} << 20;

std::string describe(const TensorSpec& spec) {
  return std::string("a ") + dtype_name(spec.dtype()) + " tensor of shape " + shape_to_string(spec.shape());
}

std::shared_ptr<void> allocate(const TensorSpec& spec) {
  const uint64_t nbytes = static_cast<uint64_t>(spec.nbytes());
  // Round up to the alignment (aligned_alloc requires a multiple); at least one
  // block so empty tensors still have distinct, valid storage.
  if (nbytes > SIZE_MAX - 128) detail::throw_out_of_memory(nbytes, describe(spec));
  const size_t n = (static_cast<size_t>(nbytes) + 63) / 64 * 64 + 64;
  if (n >= kCheckedAllocation) detail::check_memory(n, describe(spec));
  void* p = std::aligned_alloc(64, n);
  if (!p) detail::throw_out_of_memory(n, describe(spec));
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

Tensor::Tensor(TensorSpec spec) : spec_(std::move(spec)), buf_(allocate(spec_)) {}

Tensor Tensor::from_data(TensorSpec spec, const void* data) {
  Tensor t(std::move(spec));
  if (t.nbytes() > 0) std::memcpy(t.raw_data(), data, static_cast<size_t>(t.nbytes()));
  return t;
}

float* Tensor::data_f32() {
  if (dtype() != DType::float32) throw TypeError(std::string("expected a float32 tensor, got ") + dtype_name(dtype()));
  return static_cast<float*>(buf_.get());
}
const float* Tensor::data_f32() const { return const_cast<Tensor*>(this)->data_f32(); }
int64_t* Tensor::data_i64() {
  if (dtype() != DType::int64) throw TypeError(std::string("expected an int64 tensor, got ") + dtype_name(dtype()));
  return static_cast<int64_t*>(buf_.get());
}
const int64_t* Tensor::data_i64() const { return const_cast<Tensor*>(this)->data_i64(); }

Tensor Tensor::clone() const {
  if (!defined()) return {};
  return from_data(spec_, raw_data());
}

InputView InputView::of(const Tensor& t) {
  InputView v;
  v.data = t.data_f32();
  v.shape = t.shape();
  v.strides.assign(v.shape.size(), 1);
  for (size_t i = v.shape.size(); i-- > 1;) v.strides[i - 1] = v.strides[i] * v.shape[i];
  return v;
}

InputView InputView::contiguous(const float* data, Shape shape) {
  shape_numel(shape);  // rejects negative dimensions and overflow
  InputView v;
  v.data = data;
  v.strides.assign(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) v.strides[i - 1] = v.strides[i] * shape[i];
  v.shape = std::move(shape);
  return v;
}

}  // namespace pyflame_vision
