// Stand-alone checks of the C++ core without Python: the CSV parser (valid files, every error
// with its exact message, the fast and the simple path agreeing on random and mutated input),
// mean_std / normalize, and parallel_for handing a worker's exception to the caller.
//
// Why it exists: the Python tests need a Python with numpy for the target; this needs only a
// C++ compiler, so it cross-compiles for aarch64 and runs under qemu-user
// (scripts/aarch64_check.sh), which proves the portable kernels on the edge devices' ISA.
// It also builds and runs natively (scripts/aarch64_check.sh --native).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "normalize.hpp"
// parse.cpp itself (not only its header), so that the fast path can be called directly and
// shown to take the rows it is meant for: the agreement checks alone would also pass if it
// declined every row. Build this file without linking parse.cpp a second time.
#include "../parse.cpp"

namespace {

int g_failures = 0, g_checks = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

fer::CsvLayout kaggle(int side = 48) {
  fer::CsvLayout L;
  L.ncols = 3;
  L.label_col = 0;
  L.pixels_col = 1;
  L.usage_col = 2;
  L.side = side;
  L.usages = {"Training", "PublicTest", "PrivateTest"};
  return L;
}

struct Result {
  bool ok = false;
  fer::ParseError err;
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  std::vector<int8_t> usage;
};

// Parses `text` from an exact-size heap copy (a read past its end is a real over-read).
Result parse(const std::string& text, const fer::CsvLayout& L, fer::PixelsPath path, int threads = 1,
             int64_t first_line = 2) {
  fer::set_pixels_path(path);
  std::vector<char> buf(text.begin(), text.end());
  fer::ParseOutput out;
  Result r;
  r.ok = fer::parse_csv(buf.data(), buf.size(), first_line, L, threads, out, r.err);
  if (r.ok) {
    const size_t npix = static_cast<size_t>(L.side) * L.side;
    r.images.assign(out.images.get(), out.images.get() + out.rows * npix);
    r.labels.assign(out.labels.get(), out.labels.get() + out.rows);
    r.usage.assign(out.usage.get(), out.usage.get() + out.rows);
  }
  fer::set_pixels_path(fer::PixelsPath::kSimd);
  return r;
}

const fer::PixelsPath kPaths[] = {fer::PixelsPath::kSimd, fer::PixelsPath::kScalar, fer::PixelsPath::kSlow};
const char* const kPathNames[] = {"simd", "scalar", "slow"};

std::string pixels_of(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

std::vector<int> ramp(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i % 256;
  return v;
}

void test_valid_rows() {
  std::mt19937 rng(1);
  std::vector<std::vector<int>> imgs;
  std::string text;
  for (int r = 0; r < 9; ++r) {
    std::vector<int> v(2304);
    for (auto& x : v) x = static_cast<int>(rng() % 256);
    imgs.push_back(v);
    text += std::to_string(r % 7) + "," + pixels_of(v) + "," + kaggle().usages[r % 3] + (r % 2 ? "\r\n" : "\n");
  }
  for (int p = 0; p < 3; ++p) {
    for (int threads : {1, 2, 3}) {
      Result r = parse(text, kaggle(), kPaths[p], threads);
      const std::string tag = std::string(kPathNames[p]) + " threads=" + std::to_string(threads);
      check(r.ok, "valid Kaggle rows parse (" + tag + "): " + r.err.message);
      if (!r.ok) continue;
      bool same = r.images.size() == 9 * 2304u;
      for (size_t i = 0; same && i < 9; ++i)
        for (size_t j = 0; same && j < 2304; ++j) same = r.images[i * 2304 + j] == imgs[i][j];
      check(same, "valid rows: pixels equal what was written (" + tag + ")");
      for (int i = 0; i < 9; ++i) {
        check(r.labels[static_cast<size_t>(i)] == i % 7, "valid rows: label (" + tag + ")");
        check(r.usage[static_cast<size_t>(i)] == i % 3, "valid rows: usage (" + tag + ")");
      }
    }
  }
  // Quoted pixels, blanks, leading zeros, blank lines, ICML column order, no trailing newline.
  fer::CsvLayout icml = kaggle(2);
  icml.label_col = 0;
  icml.usage_col = 1;
  icml.pixels_col = 2;
  const std::string odd = "0,PrivateTest,\"1 2 3 255\"\n\n 6 ,  Training , 001\t2  3 4 \r\n   \n5,PublicTest,9 8 7 6";
  for (int p = 0; p < 3; ++p) {
    Result r = parse(odd, icml, kPaths[p]);
    check(r.ok && r.images == std::vector<uint8_t>({1, 2, 3, 255, 1, 2, 3, 4, 9, 8, 7, 6}) &&
              r.labels == std::vector<int64_t>({0, 6, 5}) && r.usage == std::vector<int8_t>({2, 0, 1}),
          std::string("quoted / blank / ICML rows (") + kPathNames[p] + ")");
  }
}

void test_errors() {
  const std::string good = pixels_of(ramp(2304));
  struct Case {
    std::string row, message;
  };
  const std::vector<Case> cases = {
      {"1," + good.substr(0, good.size() - 4) + ",Training", "pixels has 2303 values, expected 2304"},
      {"1," + good + " 9 9,Training", "pixels has 2306 values, expected 2304"},
      {"1,12 ab " + good + ",Training", "pixels value 2 is not an integer: 'ab'"},
      {"1,1 2 3.5 " + good + ",Training", "pixels value 3 is not an integer: '3.5'"},
      {"1,-4 " + good + ",Training", "pixels value 1 is -4, outside 0..255"},
      {"1,1 --4 " + good + ",Training", "pixels value 2 is not an integer: '--4'"},
      {"-3," + good + ",Training", "emotion -3 is not a class label 0..6"},
      {"1,256 " + good.substr(4) + ",Training", "pixels value 1 is 256, outside 0..255"},
      {"1," + good.substr(0, good.size() - 3) + " 99999999999999999999999999,Training",
       "pixels value 2304 is 99999999999999999999..., outside 0..255"},
      {"1,,Training", "pixels is empty"},
      {"1,   ,Training", "pixels is empty"},
      {"1," + good.substr(0, 10) + std::string(1, '\0') + good.substr(10) + ",Training",
       "pixels value 6 is not an integer: '\\x005'"},
      {"7," + good + ",Training", "emotion 7 is not a class label 0..6"},
      {"x," + good + ",Training", "emotion 'x' is not an integer"},
      {"," + good + ",Training", "emotion is empty"},
      {"1," + good + ",Train", "Usage 'Train' is not one of Training, PublicTest, PrivateTest"},
      {"1," + good + ",", "Usage is empty"},
      {"1," + good, "has 2 fields, expected 3"},
      {"1," + good + ",Training,", "has 4 fields, expected 3"},
      {"1,\"" + good + ",Training", "unterminated quoted field 2"},
      {"1,\"" + good + "\"x,Training", "unexpected character after closing quote in field 2"},
      {"1,\"" + good.substr(0, 20) + "\"\"" + good.substr(20) + "\",Training",
       "pixels value 11 is not an integer: '\"\"10'"},
  };
  const std::string ok_row = "2," + good + ",PublicTest";
  for (const Case& c : cases) {
    const std::string text = ok_row + "\r\n" + ok_row + "\r\n" + c.row + "\r\n" + ok_row + "\r\n";
    for (int p = 0; p < 3; ++p) {
      for (int threads : {1, 3}) {
        Result r = parse(text, kaggle(), kPaths[p], threads);
        check(!r.ok && r.err.line == 4 && r.err.message == c.message,
              std::string("error (") + kPathNames[p] + "): want line 4 '" + c.message + "', got line " +
                  std::to_string(r.err.line) + " '" + r.err.message + "'");
      }
    }
  }
  fer::CsvLayout bad = kaggle();
  bad.pixels_col = 3;
  Result r = parse("", bad, fer::PixelsPath::kSimd);
  check(!r.ok && r.err.line == -1 && r.err.message == "invalid CSV layout", "invalid layout is refused");
}

// A random row, canonical or not, then randomly damaged: every path must give the same outcome.
std::string random_text(std::mt19937& rng, int side) {
  static const char* const kNasty[] = {"",  "\x00", "\"", "\"\"", ",",   "\n", "\r", " ", "\t", "256",
                                       "-1", "+1",  "1e3", "999", "0007", "\xff", "\x0b", "Training", "7"};
  std::string text;
  const int rows = static_cast<int>(rng() % 5);
  for (int r = 0; r < rows; ++r) {
    std::string px;
    for (int i = 0; i < side * side; ++i) {
      px += (i ? (rng() % 16 ? " " : "  ") : "");
      px += std::to_string(rng() % (rng() % 8 ? 256 : 300));
    }
    if (rng() % 6 == 0) px = "\"" + px + "\"";
    text += std::to_string(rng() % 8) + "," + px + "," + kaggle().usages[rng() % 3] + (rng() % 2 ? "\n" : "\r\n");
  }
  const int edits = static_cast<int>(rng() % 4);
  for (int k = 0; k < edits && !text.empty(); ++k) {
    const size_t pos = rng() % (text.size() + 1);
    switch (rng() % 4) {
      case 0: text.erase(pos, rng() % 8); break;
      case 1: text.insert(pos, 1, static_cast<char>(rng() % 256)); break;
      case 2: text.insert(pos, kNasty[rng() % (sizeof kNasty / sizeof *kNasty)]); break;
      default: text.resize(pos); break;
    }
  }
  return text;
}

void test_paths_agree_on_random_input() {
  std::mt19937 rng(7);
  int accepted = 0;
  const int kCases = 3000;
  for (int n = 0; n < kCases; ++n) {
    const int side = n % 3 == 0 ? 48 : static_cast<int>(1 + rng() % 4);
    const std::string text = random_text(rng, side);
    const fer::CsvLayout L = kaggle(side);
    const Result ref = parse(text, L, fer::PixelsPath::kSlow, 1 + static_cast<int>(rng() % 3));
    for (int p = 0; p < 2; ++p) {
      const Result r = parse(text, L, kPaths[p], 1 + static_cast<int>(rng() % 3));
      const bool same = r.ok == ref.ok && r.err.line == ref.err.line && r.err.message == ref.err.message &&
                        r.images == ref.images && r.labels == ref.labels && r.usage == ref.usage;
      check(same, std::string("random input: ") + kPathNames[p] + " path differs from the simple path (case " +
                      std::to_string(n) + ": '" + r.err.message + "' vs '" + ref.err.message + "')");
    }
    accepted += ref.ok;
  }
  // The generator must produce both outcomes, or the comparison proves little.
  check(accepted > kCases / 10 && accepted < kCases * 9 / 10,
        "random input: " + std::to_string(accepted) + " of " + std::to_string(kCases) + " accepted");
}

void test_mean_std_normalize() {
  std::mt19937 rng(3);
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{65536 * 16 + 3}, size_t{5000000}}) {
    std::vector<uint8_t> a(n);
    for (auto& x : a) x = static_cast<uint8_t>(rng());
    long double s = 0, q = 0;
    for (uint8_t x : a) {
      s += x;
      q += static_cast<long double>(x) * x;
    }
    const double mean = static_cast<double>(s / n);
    const double sd = std::sqrt(static_cast<double>(q / n - (s / n) * (s / n)));
    for (int threads : {1, 2, 5}) {
      const fer::MeanStd r = fer::mean_std_u8(a.data(), n, threads);
      check(std::fabs(r.mean - mean) <= 1e-12 * 255 && std::fabs(r.std - sd) <= 1e-9 * 255,
            "mean_std of " + std::to_string(n) + " random bytes, threads=" + std::to_string(threads));
      const fer::MeanStd one = fer::mean_std_u8(a.data(), n, 1);
      check(r.mean == one.mean && r.std == one.std, "mean_std does not depend on the thread count");
    }
  }
  const uint8_t ends[2] = {0, 255};
  const fer::MeanStd e = fer::mean_std_u8(ends, 2, 1);
  check(e.mean == 127.5 && e.std == 127.5, "mean_std of {0, 255}");
  std::vector<uint8_t> src(1000003);
  for (auto& x : src) x = static_cast<uint8_t>(rng());
  std::vector<float> dst(src.size());
  fer::normalize_u8(src.data(), src.size(), 129.4, 65.0, dst.data(), 3);
  bool same = true;
  for (size_t i = 0; same && i < src.size(); ++i) same = dst[i] == static_cast<float>((src[i] - 129.4) / 65.0);
  check(same, "normalize = float((v - mean) / std) computed in double");
}

// The portable block kernel's masks equal the byte-by-byte answer for every byte value at
// every position (SWAR tricks are easy to get wrong at 0x7f/0x80 and at byte boundaries).
void test_portable_masks_every_byte() {
  std::mt19937 rng(11);
  bool same = true;
  for (int v = 0; v < 256 && same; ++v) {
    for (int pos = 0; pos < 64 && same; ++pos) {
      char block[3 + 64];
      for (char& c : block) c = static_cast<char>(rng() % 3 == 0 ? ' ' : rng() % 2 ? '0' + rng() % 10 : rng());
      block[3 + pos] = static_cast<char>(v);
      uint64_t sp = 0, dg = 0, want_sp = 0, want_dg = 0;
      fer::masks_portable(block + 3, sp, dg);
      for (int i = 0; i < 64; ++i) {
        const unsigned char c = static_cast<unsigned char>(block[3 + i]);
        want_sp |= static_cast<uint64_t>(c == ' ') << i;
        want_dg |= static_cast<uint64_t>(c >= '0' && c <= '9') << i;
      }
      same = sp == want_sp && dg == want_dg;
    }
  }
  check(same, "portable space/digit masks equal the byte-by-byte answer");
}

// The fast path must accept the rows real files are made of (else every row silently takes
// the simple path), and decline what only the simple path may decide.
void test_fast_path_takes_canonical_rows() {
  const std::string good = pixels_of(ramp(2304));
  const std::vector<std::pair<std::string, bool>> rows = {
      {"3," + good + ",Training", true},
      {"\"3\",\"" + good + "\",\"PublicTest\"", true},  // csv.QUOTE_ALL
      {"6," + good + ",\"PrivateTest\"", true},
      {"3,  " + good + ",Training", false},                 // blanks: the simple path
      {"3," + good + " ,Training", false},
      {"3,\"" + good + "\" ,Training", false},
      {"3," + good + "  1,Training", false},                // two spaces
      {"3,0001 " + good.substr(2) + ",Training", false},    // four digits
      {"3,256 " + good.substr(2) + ",Training", false},     // out of range: the simple path words it
      {"3," + good.substr(0, good.size() - 4) + ",Training", false},
      {"9," + good + ",Training", false},
  };
  const fer::CsvLayout L = kaggle();
  for (const auto& row : rows) {
    const std::string text = "x,pixels,Usage\n" + row.first;  // the fast path looks 2 bytes back
    fer::ParseOutput out;
    out.images.reset(static_cast<uint8_t*>(fer::alloc_buffer(2304)));
    out.labels.reset(static_cast<int64_t*>(fer::alloc_buffer(sizeof(int64_t))));
    out.usage.reset(static_cast<int8_t*>(fer::alloc_buffer(1)));
    const char* lo = text.data();
    const fer::Line ln{lo + 15, lo + text.size(), 2};
    bool taken[2] = {fer::parse_row_fast<false>(lo, ln, L, 0, out), false};
#ifdef FER_HAVE_SSE2
    taken[1] = fer::parse_row_fast<true>(lo, ln, L, 0, out);
#else
    taken[1] = taken[0];
#endif
    for (bool t : taken)
      check(t == row.second, std::string("fast path ") + (row.second ? "takes" : "declines") + " row '" +
                                 row.first.substr(0, 24) + "...'");
  }
}

void test_parallel_for_passes_exceptions_on() {
  for (int threads : {1, 2, 4}) {
    std::vector<int> done(4, 0);
    bool caught = false;
    try {
      fer::parallel_for(4, threads, [&](int64_t b, int64_t e, int w) {
        for (int64_t i = b; i < e; ++i) done[static_cast<size_t>(i)] = 1;
        if (w == threads - 1) throw std::runtime_error("worker " + std::to_string(w));
      });
    } catch (const std::runtime_error& ex) {
      caught = std::string(ex.what()) == "worker " + std::to_string(threads - 1);
    }
    check(caught, "parallel_for rethrows a worker's exception (threads=" + std::to_string(threads) + ")");
    check(done == std::vector<int>(4, 1), "parallel_for still runs every slice when one throws");
  }
}

}  // namespace

int main() {
  test_valid_rows();
  test_errors();
  test_paths_agree_on_random_input();
  test_fast_path_takes_canonical_rows();
  test_portable_masks_every_byte();
  test_mean_std_normalize();
  test_parallel_for_passes_exceptions_on();
  std::printf("check_core: %d checks, %d failed (simd kernel: %s)\n", g_checks, g_failures,
              fer::simd_available() ? "sse2" : "none, portable");
  return g_failures ? 1 : 0;
}
