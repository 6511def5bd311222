// Weight files from Python: _core.read_weights, load_weights, save_safetensors
// and save_weights (the C++ readers and writer; pyflame_vision.io uses them
// for .safetensors files and PyTorch checkpoints).
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

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A copy of a NumPy array as a Tensor of the same dtype (C order, host byte
// order); `what` (the key's repr) names it in errors.
Tensor tensor_of(py::handle obj, const std::string& what) {
  py::module_ np = py::module_::import("numpy");
  if (!py::isinstance<py::array>(obj))
    throw TypeError("save_safetensors: value for " + what + " must be a NumPy array, got " +
                    py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
  py::array a = py::reinterpret_borrow<py::array>(obj);
  // Byte-swapped arrays are written little-endian with their values kept.
  if (!a.dtype().attr("isnative").cast<bool>())
    a = py::reinterpret_borrow<py::array>(a.attr("astype")(a.dtype().attr("newbyteorder")("=")));
  struct Known {
    const char* numpy;
    DType dtype;
  };
  static const Known known[] = {{"float32", DType::float32}, {"float64", DType::float64}, {"float16", DType::float16},
                                {"int64", DType::int64},     {"int32", DType::int32},     {"uint8", DType::uint8},
                                {"bool", DType::bool_}};
  for (const auto& k : known) {
    const int eq = PyObject_RichCompareBool(a.dtype().ptr(), py::dtype(k.numpy).ptr(), Py_EQ);
    if (eq < 0) throw py::error_already_set();
    if (!eq) continue;
    if (!(a.flags() & py::array::c_style)) a = py::reinterpret_borrow<py::array>(a.attr("copy")("C"));
    Shape shape(a.shape(), a.shape() + a.ndim());
    return Tensor::from_data(TensorSpec(shape, k.dtype), a.data());
  }
  throw TypeError("save_safetensors: value for " + what + " has dtype " + dtype_str(a) +
                  ", which pyflame_vision does not write (float32, float64, float16, int64, int32, uint8, bool)");
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
  m.def(
      "save_safetensors",
      [](const std::string& path, py::handle tensors, py::handle metadata) {
        if (!py::hasattr(tensors, "items"))
          throw TypeError("save_safetensors: expected a mapping of names to arrays, got " +
                          py::str(py::type::handle_of(tensors).attr("__name__")).cast<std::string>());
        NamedTensors named;
        for (py::handle item : tensors.attr("items")()) {
          py::tuple kv = py::reinterpret_borrow<py::tuple>(item);
          if (!py::isinstance<py::str>(kv[0]))
            throw TypeError("save_safetensors: keys must be str, got " + short_repr(kv[0], 60));
          named.emplace_back(kv[0].cast<std::string>(), tensor_of(kv[1], short_repr(kv[0], 200)));
        }
        Metadata meta;
        if (!metadata.is_none()) {
          for (py::handle item : metadata.attr("items")()) {
            py::tuple kv = py::reinterpret_borrow<py::tuple>(item);
            if (!py::isinstance<py::str>(kv[0]) || !py::isinstance<py::str>(kv[1]))
              throw TypeError("save_safetensors: metadata maps str to str, got " + short_repr(item, 60));
            meta.emplace_back(kv[0].cast<std::string>(), kv[1].cast<std::string>());
          }
        }
        py::gil_scoped_release release;
        save_safetensors(path, named, meta);
      },
      py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::none(),
      "Writes {name: array} (float32, float64, float16, int64, int32, uint8, bool) as .safetensors, readable by the "
      "`safetensors` package, through a temporary file renamed into place. Raises InvalidArgumentError for a bad "
      "name, DTypeError for another dtype, WeightsError if the file cannot be written.");
  m.def(
      "save_weights",
      [](const models::Model& model, const std::string& path) {
        py::gil_scoped_release release;
        save_weights(model, path);
      },
      py::arg("model"), py::arg("path"),
      "Writes model.state_dict() as .safetensors with the metadata {'format': 'np', 'model': name}.");
}

}  // namespace bindings
}  // namespace pyflame_vision
