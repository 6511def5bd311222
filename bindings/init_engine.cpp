// NumPy <-> Tensor conversion, threads and instruction-set tiers.
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstring>

#include "bindings.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace bindings {

namespace {
std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// NumPy's dtype equality (native byte order, same type), not object identity:
// an array that went through pickle has an equal but distinct float32 dtype.
template <typename T>
bool has_dtype(const py::array& a) {
  const int r = PyObject_RichCompareBool(a.dtype().ptr(), py::dtype::of<T>().ptr(), Py_EQ);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}
// SigintWatch: our SIGINT handler sets g_sigint and then calls the handler it
// replaced (Python's own C handler, which only records the signal for the
// main thread's interpreter loop), so Python sees every signal exactly as
// before. Only the main thread installs it, and Python only changes signal
// handlers on the main thread, so nothing else races the install and restore.
std::atomic<bool> g_sigint{false};
struct sigaction g_previous;
int g_watch_depth = 0;  // main thread only

extern "C" void chained_sigint(int sig, siginfo_t* info, void* context) {
  g_sigint.store(true, std::memory_order_release);
  if ((g_previous.sa_flags & SA_SIGINFO) != 0) {
    if (g_previous.sa_sigaction != nullptr) g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  }
}

bool on_main_thread() {  // with the GIL held
  static const unsigned long main_ident =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  return PyThread_get_thread_ident() == main_ident;
}
}  // namespace

SigintWatch::SigintWatch() {
  if (!on_main_thread()) return;
  if (g_watch_depth > 0) {  // a nested call: the outer watch is in place
    ++g_watch_depth;
    active_ = true;
    return;
  }
  struct sigaction current;
  if (sigaction(SIGINT, nullptr, &current) != 0) return;
  const bool is_function = (current.sa_flags & SA_SIGINFO) != 0
                               ? current.sa_sigaction != nullptr
                               : current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
  if (!is_function) return;  // ignored, or the default action (the process ends): nothing to cancel for
  g_previous = current;
  g_sigint.store(false, std::memory_order_relaxed);
  struct sigaction ours = current;
  ours.sa_flags = (current.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
  ours.sa_sigaction = &chained_sigint;
  if (sigaction(SIGINT, &ours, nullptr) != 0) return;
  g_watch_depth = 1;
  active_ = true;
}

SigintWatch::~SigintWatch() {
  if (!active_) return;
  if (--g_watch_depth == 0) sigaction(SIGINT, &g_previous, nullptr);
}

const std::atomic<bool>& SigintWatch::flag() const {
  static const std::atomic<bool> never{false};
  return active_ ? g_sigint : never;
}

bool is_array_input(py::handle obj) {
  if (py::isinstance<TensorSpec>(obj) || py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj))
    return false;
  if (py::isinstance<py::array>(obj)) {
    auto a = py::reinterpret_borrow<py::array>(obj);
    const char kind = a.dtype().kind();
    return !(a.ndim() == 1 && (kind == 'i' || kind == 'u'));
  }
  return py::hasattr(obj, "__array__") || py::hasattr(obj, "__array_interface__");
}

models::InputView input_view(py::handle obj, py::object& keep) {
  py::module_ np = py::module_::import("numpy");
  py::array a = py::reinterpret_borrow<py::array>(np.attr("asarray")(obj));
  const char kind = a.dtype().kind();
  if (!has_dtype<float>(a)) {
    std::string hint;
    if (kind == 'f') {
      hint = "convert it with x.astype(numpy.float32)";
    } else if (kind == 'u' || kind == 'i' || kind == 'b') {
      hint = "convert it with x.astype(numpy.float32) and normalise it the way the weights expect "
             "(e.g. divide uint8 pixels by 255 and apply transforms.Normalize)";
    } else if (kind == 'c') {
      hint = "complex inputs are not supported; pass the real part as x.real.astype(numpy.float32)";
    } else if (kind == 'O') {
      hint = "an object array holds Python objects, not pixels; build a float32 array with "
             "numpy.asarray(x, dtype=numpy.float32)";
    } else if (kind == 'V') {
      hint = "a structured or void array has no single pixel type; pass a plain float32 array";
    } else {
      hint = "pass a float32 NumPy array";
    }
    throw TypeError("expected a float32 [N, C, H, W] array, got dtype " + dtype_str(a) + "; " + hint +
                    " (pyflame_vision never casts silently)");
  }
  if (a.ndim() != 4) {
    Shape s(a.shape(), a.shape() + a.ndim());
    throw ShapeError("[input] expected a 4-D input [N, C, H, W], got a " + std::to_string(a.ndim()) +
                     "-D array of shape " + shape_to_string(s));
  }
  // Kernels read whole floats: a buffer or stride that is not a multiple of 4
  // bytes (np.frombuffer at an odd offset, a field of a packed record) is
  // copied to an aligned C-order array. Zero and negative strides are read as
  // they are.
  bool aligned = reinterpret_cast<uintptr_t>(a.data()) % alignof(float) == 0;
  for (py::ssize_t i = 0; i < 4; ++i) aligned &= a.strides(i) % static_cast<py::ssize_t>(sizeof(float)) == 0;
  if (!aligned) a = py::reinterpret_borrow<py::array>(np.attr("array")(a, py::arg("order") = "C"));
  models::InputView v;
  v.data = static_cast<const float*>(a.data());
  for (py::ssize_t i = 0; i < 4; ++i) {
    v.shape.push_back(static_cast<int64_t>(a.shape(i)));
    v.strides.push_back(static_cast<int64_t>(a.strides(i) / static_cast<py::ssize_t>(sizeof(float))));
  }
  keep = a;
  return v;
}

py::array to_numpy(const Tensor& t) {
  auto* owner = new std::shared_ptr<void>(t.storage());
  py::capsule cap(owner, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  py::dtype dt = t.dtype() == DType::int64 ? py::dtype::of<int64_t>() : py::dtype::of<float>();
  return py::array(dt, shape, {}, t.raw_data(), cap);
}

Tensor tensor_from_python(py::handle obj, const std::string& what) {
  py::module_ np = py::module_::import("numpy");
  py::array a;
  try {
    a = py::reinterpret_borrow<py::array>(np.attr("asarray")(obj));
  } catch (py::error_already_set& e) {
    throw TypeError("value for " + what + " is not an array (" + short_repr(obj, 60) + "): " +
                    std::string(e.what()).substr(0, 200));
  }
  const char kind = a.dtype().kind();
  DType dt;
  if (kind == 'f') {
    if (!has_dtype<float>(a) && !has_dtype<double>(a))
      a = py::reinterpret_borrow<py::array>(a.attr("astype")(np.attr("float32")));
    dt = has_dtype<double>(a) ? DType::float64 : DType::float32;
  } else if (kind == 'i' || kind == 'u') {
    // uint64 values above 2^63 - 1 would wrap to negative int64s.
    if (kind == 'u' && a.itemsize() == 8 && a.size() > 0 &&
        py::int_(a.attr("max")()).cast<unsigned long long>() > static_cast<unsigned long long>(INT64_MAX))
      throw TypeError("value for " + what + " is a uint64 array with values above 2**63 - 1, which do not fit "
                      "the int64/float32 the model stores");
    a = py::reinterpret_borrow<py::array>(a.attr("astype")(np.attr("int64")));
    dt = DType::int64;
  } else {
    throw TypeError("value for " + what + " must be a float or integer array, got dtype " + dtype_str(a));
  }
  // (np.ascontiguousarray would turn a 0-d num_batches_tracked into shape [1].)
  if (!(a.flags() & py::array::c_style)) a = py::reinterpret_borrow<py::array>(a.attr("copy")("C"));
  Shape shape(a.shape(), a.shape() + a.ndim());
  return Tensor::from_data(TensorSpec(shape, dt), a.data());
}

void init_engine(py::module_& m) {
  m.def("get_num_threads", &get_num_threads, "Threads pyflame_vision uses for compute.");
  m.def(
      "set_num_threads",
      [](py::handle n) {
        if (PyBool_Check(n.ptr()) || !PyIndex_Check(n.ptr()))
          throw TypeError("set_num_threads expects an int, got " +
                          std::string(py::str(py::type::handle_of(n).attr("__name__"))));
        const long long v = PyLong_AsLongLong(n.ptr());
        if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
        if (v < 1 || v > kMaxThreads)
          throw InvalidArgument("set_num_threads expects 1 <= n <= " + std::to_string(kMaxThreads) + ", got " +
                                std::to_string(v));
        py::gil_scoped_release release;
        set_num_threads(static_cast<int>(v));
      },
      py::arg("n"),
      "Sets the number of compute threads (default: PYFLAME_VISION_NUM_THREADS, else the CPUs available).");
  m.def("detected_isa", []() { return std::string(isa_name(detected_isa())); },
        "The best instruction-set tier this CPU supports: 'scalar', 'avx2' or 'avx512'.");
  m.def("active_isa", []() { return std::string(isa_name(active_isa())); },
        "The tier kernels compile for now (capped by PYFLAME_VISION_MAX_ISA and set_max_isa).");
  m.def(
      "set_max_isa", [](const std::string& name) { set_max_isa(parse_isa(name)); }, py::arg("isa"),
      "Caps the instruction-set tier ('scalar', 'avx2', 'avx512'); never raises it above detected_isa().");
}

}  // namespace bindings
}  // namespace pyflame_vision
