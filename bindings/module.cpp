// pyflame_vision._core: the compiled half of pyflame_vision.
#include "bindings.h"
#include "pyflame_vision/version.h"

PYBIND11_MODULE(_core, m) {
  using namespace pyflame_vision::bindings;
  m.doc() = "pyflame_vision C++ core: module tree, layer graph, shape inference, CPU execution engine";
  m.attr("__version__") = pyflame_vision::version();
  init_errors(m);
  init_tensor(m);
  init_nn(m);
  init_models(m);
  init_transforms(m);
  init_engine(m);
  init_bench(m);
  init_pretrained(m);
  init_io(m);
}
