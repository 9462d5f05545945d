// Python bindings of fer_edge._native. Argument checking lives here (with the GIL held);
// the kernels in parse.cpp / normalize.cpp run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <vector>

#include "normalize.hpp"
#include "parse.hpp"

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

// Kaggle's Usage values, in the order of their codes. The Python data layer passes its own
// list (fer_edge.data.dataset.USAGE_TO_SPLIT) on every call; this is only the default and
// the USAGES attribute, both made from this one list.
const std::vector<std::string> kUsages = {"Training", "PublicTest", "PrivateTest"};

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() =
      "fer-edge's C++ core: FER2013 CSV parsing, exact mean/std and normalisation "
      "(face preprocessing is OpenCV's, see fer_edge/runtime/align.py). The tests hold each function "
      "to a pure-numpy reference (tests/native_reference.py).";
  m.attr("USAGES") = py::tuple(py::cast(kUsages));
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
      "Testing hook: which row parser runs first ('simd', the default: the fast path with its SIMD "
      "kernel where there is one; 'scalar': the fast path with the portable kernel; 'slow': the simple "
      "path only). Results and errors are the same on every path; only speed differs.");

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
}
