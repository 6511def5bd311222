// Transforms: the shape logic (Resize, CenterCrop, Normalize, Compose) and the
// pixel functions on NumPy arrays [N, C, H, W] (resize, crop, normalize, the
// ImageClassification preset). Pixel functions release the GIL while they run.
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/transforms.h"

namespace pyflame_vision {
namespace bindings {

using namespace transforms;

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

DType pixel_dtype(const py::array& a, const char* who) {
  if (a.dtype().is(py::dtype::of<uint8_t>())) return DType::uint8;
  if (a.dtype().is(py::dtype::of<float>())) return DType::float32;
  throw TypeError(std::string(who) + ": expected a uint8 or float32 array, got dtype " + dtype_str(a));
}

bool rows_supported(const ImageLayout& l) {
  const bool planar = l.w == 1 || l.stride_x == 1;
  const bool inter = (l.c == 1 || l.stride_c == 1) && (l.w == 1 || l.stride_x == l.c);
  return planar || inter;
}

// A view of a 4-D uint8/float32 array. Arrays whose rows the pixel functions
// cannot address (negative or odd strides, columns neither planar nor
// interleaved) are copied to C order first; `keep` holds the array in use.
ImageView array_view(py::handle obj, py::array& keep, const char* who) {
  if (!py::isinstance<py::array>(obj))
    throw TypeError(std::string(who) + ": expected a numpy.ndarray, got " +
                    py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const DType dt = pixel_dtype(a, who);
  if (a.ndim() != 4) {
    Shape s(a.shape(), a.shape() + a.ndim());
    throw ShapeError(std::string("[") + who + "] expected a 4-D array [N, C, H, W], got shape " + shape_to_string(s));
  }
  const py::ssize_t el = a.itemsize();
  auto layout_of = [&](const py::array& arr, ImageLayout& l) {
    int64_t* sizes[4] = {&l.n, &l.c, &l.h, &l.w};
    int64_t* strides[4] = {&l.stride_n, &l.stride_c, &l.stride_y, &l.stride_x};
    bool ok = true;
    for (py::ssize_t i = 0; i < 4; ++i) {
      *sizes[i] = static_cast<int64_t>(arr.shape(i));
      const py::ssize_t st = arr.strides(i);
      if (st < 0 || st % el != 0) ok = false;
      *strides[i] = static_cast<int64_t>(st / el);
    }
    return ok && rows_supported(l);
  };
  ImageLayout l;
  if (!layout_of(a, l)) {
    a = py::reinterpret_borrow<py::array>(py::module_::import("numpy").attr("ascontiguousarray")(a));
    layout_of(a, l);
  }
  keep = a;
  return ImageView{a.data(), dt, l};
}

py::array new_array(DType dt, const Shape& shape) {
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  return dt == DType::uint8 ? py::array(py::dtype::of<uint8_t>(), s) : py::array(py::dtype::of<float>(), s);
}

MutableImageView planar_view(py::array& out, DType dt) {
  const Shape s(out.shape(), out.shape() + 4);
  return MutableImageView{out.mutable_data(), dt, ImageLayout::planar(s[0], s[1], s[2], s[3])};
}

}  // namespace

void init_transforms(py::module_& m) {
  py::module_ t = m.def_submodule("transforms", "Shape logic and pixel operations of the preprocessing transforms.");
  py::class_<Transform, std::shared_ptr<Transform>>(t, "Transform")
      .def(
          "get_output_shape",
          [](const Transform& self, py::handle shape) {
            return shape_to_python(self.get_output_shape(shape_from_python(shape, "input_shape")));
          },
          py::arg("input_shape"))
      .def("__repr__", &Transform::repr);
  py::class_<Resize, Transform, std::shared_ptr<Resize>>(t, "Resize")
      .def(py::init<std::vector<int64_t>, int64_t, std::string, bool, bool>(), py::arg("size"),
           py::arg("max_size") = -1, py::arg("interpolation") = "bilinear", py::arg("antialias") = true,
           py::arg("size_is_int") = false);
  py::class_<CenterCrop, Transform, std::shared_ptr<CenterCrop>>(t, "CenterCrop")
      .def(py::init<int64_t, int64_t, bool>(), py::arg("height"), py::arg("width"), py::arg("size_is_int") = false);
  py::class_<Normalize, Transform, std::shared_ptr<Normalize>>(t, "Normalize")
      .def(py::init<std::vector<double>, std::vector<double>, bool>(), py::arg("mean"), py::arg("std"),
           py::arg("inplace") = false);
  py::class_<Compose, Transform, std::shared_ptr<Compose>>(t, "Compose")
      .def(py::init([](const std::vector<std::shared_ptr<Transform>>& v) {
             return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>(v.begin(), v.end()));
           }),
           py::arg("transforms"));

  t.def(
      "resize",
      [](py::handle src, int64_t out_h, int64_t out_w, const std::string& interpolation, bool antialias,
         py::object window) {
        const Interpolation mode = parse_interpolation(interpolation);
        py::array keep;
        const ImageView in = array_view(src, keep, "resize");
        int64_t top = 0, left = 0, h = out_h, w = out_w;
        if (!window.is_none()) {
          const auto win = window.cast<std::vector<int64_t>>();
          if (win.size() != 4)
            throw InvalidArgument("resize: window must be (top, left, height, width), got " +
                                  std::to_string(win.size()) + " values");
          top = win[0];
          left = win[1];
          h = win[2];
          w = win[3];
        }
        if (h < 0 || w < 0) throw ShapeError("[resize] output size must be >= 0, got " + shape_to_string({h, w}));
        py::array out = new_array(in.dtype, {in.layout.n, in.layout.c, h, w});
        const MutableImageView dst = planar_view(out, in.dtype);
        {
          py::gil_scoped_release release;
          resize_image(in, dst, out_h, out_w, top, left, mode, antialias);
        }
        return out;
      },
      py::arg("src"), py::arg("out_h"), py::arg("out_w"), py::arg("interpolation") = "bilinear",
      py::arg("antialias") = true, py::arg("window") = py::none(),
      "Resizes a uint8/float32 [N, C, H, W] array to out_h x out_w (torchvision's tensor path); window = (top, "
      "left, height, width) computes only that part of the output. Returns a new C-ordered array.");
  t.def(
      "crop",
      [](py::handle src, int64_t top, int64_t left, int64_t height, int64_t width) {
        py::array keep;
        const ImageView in = array_view(src, keep, "crop");
        if (height < 0 || width < 0)
          throw ShapeError("[crop] crop size must be >= 0, got " + shape_to_string({height, width}));
        py::array out = new_array(in.dtype, {in.layout.n, in.layout.c, height, width});
        const MutableImageView dst = planar_view(out, in.dtype);
        {
          py::gil_scoped_release release;
          crop_image(in, dst, top, left);
        }
        return out;
      },
      py::arg("src"), py::arg("top"), py::arg("left"), py::arg("height"), py::arg("width"),
      "torchvision's crop of a [N, C, H, W] array with zero padding outside the image (a new array).");
  t.def("center_crop_offsets", &center_crop_offsets, py::arg("height"), py::arg("width"), py::arg("crop_height"),
        py::arg("crop_width"), "(top, left) of torchvision's center_crop (negative where it pads).");
  t.def(
      "normalize",
      [](py::handle src, const std::vector<double>& mean, const std::vector<double>& std) {
        py::array keep;
        const ImageView in = array_view(src, keep, "normalize");
        py::array out = new_array(DType::float32, in.layout.shape());
        const MutableImageView dst = planar_view(out, DType::float32);
        {
          py::gil_scoped_release release;
          normalize_image(in, dst, mean, std);
        }
        return out;
      },
      py::arg("src"), py::arg("mean"), py::arg("std"),
      "(x - mean[c]) / std[c] in float32 of a [N, C, H, W] array (uint8 is divided by 255 first).");
  t.def(
      "image_classification",
      [](py::handle src, int64_t crop_size, int64_t resize_size, std::vector<double> mean, std::vector<double> std,
         const std::string& interpolation, bool antialias) {
        const ImageClassification preset(crop_size, resize_size, std::move(mean), std::move(std),
                                         parse_interpolation(interpolation), antialias);
        py::array keep;
        const ImageView in = array_view(src, keep, "ImageClassification");
        Tensor out;
        {
          py::gil_scoped_release release;
          out = preset(in);
        }
        return to_numpy(out);
      },
      py::arg("src"), py::arg("crop_size"), py::arg("resize_size"), py::arg("mean"), py::arg("std"),
      py::arg("interpolation") = "bilinear", py::arg("antialias") = true,
      "torchvision's ImageClassification preset on a uint8/float32 [N, C, H, W] array: float32 [N, C, crop, crop].");
}

}  // namespace bindings
}  // namespace pyflame_vision
