// Python bindings of fer_edge._native. Argument checking lives here (with the GIL held);
// the kernels in parse.cpp / normalize.cpp / preprocess.cpp run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <vector>

#include "normalize.hpp"
#include "parse.hpp"
#include "preprocess.hpp"

namespace py = pybind11;

namespace {

// A read-only, C-contiguous view of a bytes-like object (bytes, bytearray, memoryview, mmap,
// uint8 ndarray) or of a str encoded as UTF-8. Holding the view keeps the buffer from being
// resized while the GIL is released.
class ByteView {
 public:
  explicit ByteView(const py::object& obj) {
    if (py::isinstance<py::str>(obj)) {
      keep_ = py::reinterpret_steal<py::object>(PyUnicode_AsUTF8String(obj.ptr()));
      if (!keep_) throw py::error_already_set();
    } else {
      keep_ = obj;
    }
    if (PyObject_GetBuffer(keep_.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error("expected bytes, bytearray, memoryview, mmap or str, got " +
                           std::string(Py_TYPE(obj.ptr())->tp_name));
    }
    held_ = true;
  }
  ~ByteView() {
    if (held_) PyBuffer_Release(&view_);
  }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
  const char* data() const { return static_cast<const char*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  py::object keep_;
  Py_buffer view_{};
  bool held_ = false;
};

template <class T>
py::array_t<T> adopt(fer::Buffer<T> data, std::vector<py::ssize_t> shape) {
  T* raw = data.release();
  py::capsule owner(raw, [](void* p) { fer::FreeDeleter()(p); });
  return py::array_t<T>(shape, raw, owner);
}

py::tuple parse_csv_impl(const py::object& data, const fer::CsvLayout& layout, py::ssize_t start,
                         int64_t first_line, const std::string& name, int threads) {
  ByteView bytes(data);
  if (start < 0 || static_cast<size_t>(start) > bytes.size())
    throw py::value_error("start=" + std::to_string(start) + " is outside the " + std::to_string(bytes.size()) +
                          "-byte buffer");
  fer::ParseOutput out;
  fer::ParseError err;
  bool ok;
  {
    py::gil_scoped_release nogil;
    ok = fer::parse_csv(bytes.data() + start, bytes.size() - static_cast<size_t>(start), first_line, layout,
                        threads, out, err);
  }
  if (!ok) {
    if (err.line < 0) throw py::value_error(err.message);
    throw py::value_error(name + " line " + std::to_string(err.line) + ": " + err.message);
  }
  const py::ssize_t n = static_cast<py::ssize_t>(out.rows), side = layout.side;
  return py::make_tuple(adopt(std::move(out.images), {n, side, side}), adopt(std::move(out.labels), {n}),
                        adopt(std::move(out.usage), {n}));
}

py::array require_u8(const py::object& obj, const char* what) {
  if (!py::isinstance<py::array>(obj))
    throw py::value_error(std::string(what) + " must be a numpy uint8 array, got " + Py_TYPE(obj.ptr())->tp_name);
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (a.dtype().kind() != 'u' || a.dtype().itemsize() != 1)
    throw py::value_error(std::string(what) + " must be a uint8 array, got " +
                          py::str(a.dtype()).cast<std::string>());
  return a;
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

void check_mean_std(double mean, double std) {
  if (!std::isfinite(mean)) throw py::value_error("mean must be finite, got " + std::to_string(mean));
  if (!std::isfinite(std) || !(std > 0)) throw py::value_error("std must be finite and > 0, got " + std::to_string(std));
}

// `out` given by the caller: float32, exactly `shape`, C-contiguous, writeable.
py::array_t<float> check_out(const py::object& out, const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) return py::array_t<float>(shape);
  if (!py::isinstance<py::array>(out))
    throw py::value_error(std::string("out must be a numpy float32 array, got ") + Py_TYPE(out.ptr())->tp_name);
  py::array a = py::reinterpret_borrow<py::array>(out);
  if (a.dtype().kind() != 'f' || a.dtype().itemsize() != 4)
    throw py::value_error("out must be float32, got " + py::str(a.dtype()).cast<std::string>());
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error("out has shape " + shape_str(a) + ", expected " + want + ")");
  }
  if (!(a.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  if (!a.writeable()) throw py::value_error("out is read-only");
  return py::reinterpret_borrow<py::array_t<float>>(a);
}

py::tuple mean_std(const py::object& images, int threads) {
  py::array a = require_u8(images, "images");
  if (a.size() == 0) throw py::value_error("mean_std of an empty array");
  auto c = py::array_t<uint8_t, py::array::c_style>::ensure(a);
  if (!c) throw py::error_already_set();
  fer::MeanStd r;
  {
    py::gil_scoped_release nogil;
    r = fer::mean_std_u8(c.data(), static_cast<size_t>(c.size()), threads);
  }
  return py::make_tuple(r.mean, r.std);
}

py::array_t<float> normalize(const py::object& images, double mean, double std, const py::object& out, int threads) {
  py::array a = require_u8(images, "images");
  if (a.ndim() != 3) throw py::value_error("images must have shape (N, H, W), got " + shape_str(a));
  check_mean_std(mean, std);
  auto c = py::array_t<uint8_t, py::array::c_style>::ensure(a);
  if (!c) throw py::error_already_set();
  py::array_t<float> o = check_out(out, {a.shape(0), 1, a.shape(1), a.shape(2)});
  float* dst = o.mutable_data();
  {
    py::gil_scoped_release nogil;
    fer::normalize_u8(c.data(), static_cast<size_t>(c.size()), mean, std, dst, threads);
  }
  return o;
}

py::array_t<float> preprocess_faces(const py::object& image, const py::object& boxes, int size, double mean,
                                    double std, const py::object& out) {
  py::array img = require_u8(image, "image");
  if (!(img.ndim() == 2 || (img.ndim() == 3 && img.shape(2) == 3)))
    throw py::value_error("image must have shape (H, W) (gray) or (H, W, 3) (BGR), got " + shape_str(img));
  if (img.shape(0) < 1 || img.shape(1) < 1) throw py::value_error("image is empty: shape " + shape_str(img));
  if (size < 1 || size > 4096) throw py::value_error("size must be in 1..4096, got " + std::to_string(size));
  check_mean_std(mean, std);
  if (!py::isinstance<py::array>(boxes)) throw py::value_error("boxes must be an integer numpy array of shape (K, 4)");
  py::array b = py::reinterpret_borrow<py::array>(boxes);
  const char kind = b.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error("boxes must be integers (x, y, w, h), got " + py::str(b.dtype()).cast<std::string>());
  if (b.ndim() != 2 || b.shape(1) != 4) throw py::value_error("boxes must have shape (K, 4), got " + shape_str(b));
  auto bx = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(b);
  if (!bx) throw py::error_already_set();

  fer::ImageView view;
  view.data = static_cast<const uint8_t*>(img.data());
  view.height = img.shape(0);
  view.width = img.shape(1);
  view.channels = img.ndim() == 3 ? 3 : 1;
  view.stride_y = img.strides(0);
  view.stride_x = img.strides(1);
  view.stride_c = img.ndim() == 3 ? img.strides(2) : 0;

  const py::ssize_t k = bx.shape(0);
  struct Crop {
    int64_t x0, y0, w, h;
  };
  std::vector<Crop> crops(static_cast<size_t>(k));
  const int64_t W = view.width, H = view.height, kLimit = int64_t{1} << 31;
  auto r = bx.unchecked<2>();
  for (py::ssize_t i = 0; i < k; ++i) {
    const int64_t x = r(i, 0), y = r(i, 1), w = r(i, 2), h = r(i, 3);
    const std::string desc = "box " + std::to_string(i) + " (" + std::to_string(x) + ", " + std::to_string(y) +
                             ", " + std::to_string(w) + ", " + std::to_string(h) + ")";
    if (std::llabs(x) >= kLimit || std::llabs(y) >= kLimit || std::llabs(w) >= kLimit || std::llabs(h) >= kLimit)
      throw py::value_error(desc + " has coordinates outside -2**31..2**31");
    const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
    const int64_t x1 = std::min<int64_t>(x + w, W), y1 = std::min<int64_t>(y + h, H);
    if (x1 <= x0 || y1 <= y0)
      throw py::value_error(desc + " is empty inside the " + std::to_string(W) + "x" + std::to_string(H) + " image");
    crops[static_cast<size_t>(i)] = Crop{x0, y0, x1 - x0, y1 - y0};
  }
  py::array_t<float> o = check_out(out, {k, 1, size, size});
  float* dst = o.mutable_data();
  {
    py::gil_scoped_release nogil;
    const float m = static_cast<float>(mean), s = static_cast<float>(std);
    for (size_t i = 0; i < crops.size(); ++i)
      fer::preprocess_face(view, crops[i].x0, crops[i].y0, crops[i].w, crops[i].h, size, m, s,
                           dst + i * static_cast<size_t>(size) * size);
  }
  return o;
}

const std::vector<std::string> kUsages = {"Training", "PublicTest", "PrivateTest"};

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() =
      "fer-edge's C++ core: FER2013 CSV parsing, exact mean/std, normalisation and fused face "
      "preprocessing. Pure-numpy references of every function are in fer_edge.reference.";
  m.attr("USAGES") = py::make_tuple("Training", "PublicTest", "PrivateTest");
  m.attr("SIMD") = fer::simd_available() ? "sse2" : "none";

  m.def(
      "parse_fer_csv",
      [](const py::object& data, int ncols, int pixels_col, int label_col, int usage_col,
         std::vector<std::string> usages, int num_classes, py::ssize_t start, int64_t first_line,
         const std::string& name, int side, int threads) {
        fer::CsvLayout layout;
        layout.ncols = ncols;
        layout.pixels_col = pixels_col;
        layout.label_col = label_col;
        layout.usage_col = usage_col;
        layout.usages = std::move(usages);
        layout.num_classes = num_classes;
        layout.side = side;
        return parse_csv_impl(data, layout, start, first_line, name, threads);
      },
      py::arg("data"), py::kw_only(), py::arg("ncols"), py::arg("pixels_col"), py::arg("label_col") = -1,
      py::arg("usage_col") = -1, py::arg("usages") = kUsages, py::arg("num_classes") = 7, py::arg("start") = 0,
      py::arg("first_line") = 2, py::arg("name") = "<csv>", py::arg("side") = 48, py::arg("threads") = 0,
      R"doc(Parse the records of a FER2013-style CSV.

data: the file's bytes (bytes, bytearray, memoryview, mmap or str). Records start at byte
`start` (just after the header, which the caller reads to find the columns), and the line
there is line `first_line` of the file. Columns are 0-based; -1 marks a column the file does
not have. Returns (images uint8 (N, side, side), labels int64 (N,) (-1 without a label
column), usage int8 (N,) (index into `usages`, -1 without a Usage column)).
Raises ValueError "<name> line <L>: <problem>" for the first malformed record. Runs without
the GIL, on `threads` threads (0: all cores).)doc");

  m.def(
      "_set_pixels_path",
      [](const std::string& name) {
        if (name == "simd")
          fer::set_pixels_path(fer::PixelsPath::kSimd);
        else if (name == "scalar")
          fer::set_pixels_path(fer::PixelsPath::kScalar);
        else if (name == "slow")
          fer::set_pixels_path(fer::PixelsPath::kSlow);
        else
          throw py::value_error("pixels path must be 'simd', 'scalar' or 'slow'");
      },
      py::arg("name"),
      "Testing hook: force the pixels fast path ('simd', the default; 'scalar'; 'slow': none). "
      "Results and errors are the same on every path; only speed differs.");

  m.def(
      "parse_pixels",
      [](const py::object& data, int64_t first_line, const std::string& name, int side, int threads) {
        fer::CsvLayout layout;
        layout.ncols = 1;
        layout.pixels_col = 0;
        layout.side = side;
        return parse_csv_impl(data, layout, 0, first_line, name, threads)[0].cast<py::array>();
      },
      py::arg("data"), py::kw_only(), py::arg("first_line") = 1, py::arg("name") = "<pixels>",
      py::arg("side") = 48, py::arg("threads") = 0,
      R"doc(Parse pixel strings, one per line (a pixels column on its own), into uint8 (N, side, side).

Each non-blank line must hold exactly side*side whitespace-separated integers in 0..255
(a line may be wrapped in double quotes). Raises ValueError "<name> line <L>: <problem>".)doc");

  m.def("mean_std", &mean_std, py::arg("images"), py::kw_only(), py::arg("threads") = 0,
        R"doc(Mean and population standard deviation of a uint8 array of any shape.

Sum and sum of squares are accumulated exactly in 64-bit integers, so the result does not
depend on the order of the pixels or the number of threads.)doc");

  m.def("normalize", &normalize, py::arg("images"), py::arg("mean"), py::arg("std"), py::arg("out") = py::none(),
        py::kw_only(), py::arg("threads") = 0,
        R"doc(float32 (N, 1, H, W) = (images - mean) / std for uint8 images (N, H, W).

The division is done in double and rounded once to float32. `out`, when given, must be a
C-contiguous writeable float32 array of exactly that shape; it is filled and returned.)doc");

  m.def("preprocess_faces", &preprocess_faces, py::arg("image"), py::arg("boxes"), py::arg("size"), py::arg("mean"),
        py::arg("std"), py::arg("out") = py::none(),
        R"doc(Crop, gray, resize and normalise faces in one pass: float32 (K, 1, size, size).

image: uint8 (H, W) gray or (H, W, 3) BGR. boxes: integer (K, 4) as x, y, w, h, clipped
to the image (a box empty after clipping raises ValueError). Gray conversion is OpenCV's
uint8 BGR2GRAY; the resize is cv2.resize on the float32 crop with INTER_AREA when the crop
is larger than `size` in both dimensions and INTER_LINEAR otherwise; then (v - mean) / std
in float32. Equals fer_edge.reference.preprocess_faces_reference within float rounding.)doc");
}
