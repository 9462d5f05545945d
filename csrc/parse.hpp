// FER2013 CSV / pixel-string parser. Pure C++ (no Python): the binding in module.cpp
// releases the GIL around these calls and turns a ParseError into a Python ValueError.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fer {

// Column layout of the CSV, detected from the header in Python. Columns are 0-based;
// -1 means "absent".
struct CsvLayout {
  int ncols = 1;
  int pixels_col = 0;
  int label_col = -1;
  int usage_col = -1;
  int num_classes = 7;
  int side = 48;                     // images are side x side
  std::vector<std::string> usages;  // allowed Usage values; the index is the usage code
};

struct ParseError {
  int64_t line = 0;  // 0: no error
  std::string message;
};

// Buffers from alloc_buffer() are released with std::free.
struct FreeDeleter {
  void operator()(void* p) const noexcept;
};
template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

// Uninitialised memory for n items; large blocks are 2 MiB aligned and, on Linux, marked for
// transparent huge pages (as numpy does), which saves most of the page faults of first touch.
void* alloc_buffer(size_t bytes);

struct ParseOutput {
  int64_t rows = 0;
  Buffer<uint8_t> images;  // rows * side * side
  Buffer<int64_t> labels;  // rows; -1 when there is no label column
  Buffer<int8_t> usage;    // rows; index into CsvLayout::usages, -1 without Usage
};

// Which path parses rows first (a testing hook; results and errors are the same on each):
// kSimd: the fast path with its SIMD block kernel (the portable kernel where there is no
// SSE2); kScalar: the fast path with the portable kernel; kSlow: the simple path only. The
// simple path always runs for a row the fast path declines, and words the errors.
enum class PixelsPath { kSimd, kScalar, kSlow };
void set_pixels_path(PixelsPath path);
bool simd_available();

// Parses data[0, size) where every non-blank line is one record (lines end in \n, an
// optional \r before it is dropped; blank lines are skipped but counted). `first_line`
// is the number a text editor shows for the line at data[0]. Never reads outside
// [data, data + size). Returns false and fills `err` (the lowest failing line) on the
// first malformed record.
bool parse_csv(const char* data, size_t size, int64_t first_line, const CsvLayout& layout,
               int threads, ParseOutput& out, ParseError& err);

}  // namespace fer
