// Weight files from Python: _core.read_weights and _core.load_weights (the
// C++ readers; pyflame_vision.io picks them for PyTorch checkpoints).
#include <pybind11/stl.h>

#include <optional>

#include "bindings.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

namespace pyflame_vision {
namespace bindings {

namespace {

CheckpointOptions options_from(const std::optional<std::string>& key, const std::optional<std::string>& strip_prefix) {
  CheckpointOptions o;
  o.key = key;
  if (strip_prefix) o.strip_prefix = *strip_prefix;
  return o;
}

// A NumPy array over the tensor's storage (no copy). NumPy has no bfloat16:
// those become float32 (exact).
py::array array_of(const Tensor& t) {
  if (t.dtype() == DType::bfloat16) {
    Tensor f{TensorSpec(t.shape(), DType::float32)};
    const auto* src = static_cast<const uint16_t*>(t.raw_data());
    auto* dst = static_cast<uint32_t*>(f.raw_data());
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = static_cast<uint32_t>(src[i]) << 16;
    return array_of(f);
  }
  py::dtype dt;
  switch (t.dtype()) {
    case DType::float32: dt = py::dtype::of<float>(); break;
    case DType::float64: dt = py::dtype::of<double>(); break;
    case DType::float16: dt = py::dtype("float16"); break;
    case DType::int64: dt = py::dtype::of<int64_t>(); break;
    case DType::int32: dt = py::dtype::of<int32_t>(); break;
    case DType::uint8: dt = py::dtype::of<uint8_t>(); break;
    case DType::bool_: dt = py::dtype("bool"); break;
    case DType::bfloat16: break;  // converted above
  }
  auto* owner = new std::shared_ptr<void>(t.storage());
  py::capsule cap(owner, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  return py::array(dt, shape, {}, t.raw_data(), cap);
}

}  // namespace

void init_io(py::module_& m) {
  m.def(
      "read_weights",
      [](const std::string& path, const std::optional<std::string>& key,
         const std::optional<std::string>& strip_prefix) {
        const CheckpointOptions o = options_from(key, strip_prefix);
        NamedTensors tensors;
        {
          py::gil_scoped_release release;
          tensors = read_weights(path, o);
        }
        py::dict out;
        for (const auto& kv : tensors) out[py::str(kv.first)] = array_of(kv.second);
        return out;
      },
      py::arg("path"), py::kw_only(), py::arg("key") = py::none(), py::arg("strip_prefix") = py::none(),
      "The tensors of a .safetensors file or a PyTorch checkpoint (format from the content; no code from the file "
      "runs) as {name: numpy array}, sharing the reader's memory. Raises WeightsError.");
  m.def(
      "load_weights",
      [](models::Model& model, const std::string& path, bool strict, const std::optional<std::string>& key,
         const std::optional<std::string>& strip_prefix) {
        const CheckpointOptions o = options_from(key, strip_prefix);
        models::LoadResult r;
        {
          py::gil_scoped_release release;
          r = load_weights(model, path, strict, o);
        }
        py::object nt = py::module_::import("pyflame_vision._core").attr("IncompatibleKeys");
        return nt(py::cast(r.missing_keys), py::cast(r.unexpected_keys));
      },
      py::arg("model"), py::arg("path"), py::arg("strict") = true, py::kw_only(), py::arg("key") = py::none(),
      py::arg("strip_prefix") = py::none(),
      "Load a .safetensors file or a PyTorch checkpoint into `model` entirely in C++ (the model takes over the "
      "tensors read, no copy). Returns IncompatibleKeys; raises WeightsError (previous weights then unchanged).");
}

}  // namespace bindings
}  // namespace pyflame_vision
