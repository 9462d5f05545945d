// FER2013 CSV parser.
//
// Grammar (mirrored line for line by fer_edge.reference.parse_fer_csv_reference, which the
// tests compare against, messages included):
//   * records are lines ending in \n; one \r before the \n is dropped; lines holding only
//     whitespace are skipped (they still count for line numbers);
//   * fields are separated by ',' ; a field whose first non-blank character is '"' is quoted:
//     it runs to the next '"' that is not doubled ("" stays in the content as is), and only
//     blanks may follow the closing quote before ',' or the end of the line; a quoted field
//     never spans lines;
//   * pixels: whitespace-separated ASCII decimal integers in 0..255, exactly side*side;
//   * emotion: a decimal integer in 0..num_classes-1; Usage: one of the allowed names
//     (both trimmed of whitespace).
//
// Speed: a row in the canonical form (1-3 digit tokens separated by single spaces) takes
// the fast path, which classifies 64 bytes at a time (SSE2 where available) and walks the
// separator bitmask; anything else falls back to the byte-at-a-time path, which is also
// the one that words the error. Rows are split across threads; the Python binding
// releases the GIL for all of it.
#include "parse.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "common.hpp"

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define FER_HAVE_SSE2 1
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fer {
namespace {

constexpr int kMaxCols = 64;

std::atomic<PixelsPath> g_pixels_path{PixelsPath::kSimd};
constexpr size_t kDisplayLimit = 20;

inline int popcount64(uint64_t x) {  // portable: baseline x86-64 has no POPCNT instruction
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int>((x * 0x0101010101010101ull) >> 56);
}

inline int ctz64(uint64_t x) {
#if defined(_MSC_VER) && !defined(__clang__)
  unsigned long i;
  _BitScanForward64(&i, x);
  return static_cast<int>(i);
#else
  return __builtin_ctzll(x);
#endif
}

struct Line {
  const char* b;
  const char* e;  // excludes the \n and a \r before it
  int64_t lineno;
};

struct Field {
  const char* b;
  const char* e;
};

// Token shown in an error message: Python-repr-like, quoted, at most 20 bytes.
std::string display_quoted(const char* b, const char* e) {
  size_t n = static_cast<size_t>(e - b), m = std::min(n, kDisplayLimit);
  std::string s = "'";
  for (size_t i = 0; i < m; ++i) {
    unsigned char c = static_cast<unsigned char>(b[i]);
    if (c == '\'') {
      s += "\\'";
    } else if (c == '\\') {
      s += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    }
  }
  s += "'";
  if (n > kDisplayLimit) s += "...";
  return s;
}

// An all-digit token shown as a number, at most 20 digits.
std::string display_digits(const char* b, const char* e) {
  size_t n = static_cast<size_t>(e - b), m = std::min(n, kDisplayLimit);
  std::string s(b, m);
  if (n > kDisplayLimit) s += "...";
  return s;
}

inline void trim(const char*& b, const char*& e) {
  while (b < e && is_ws(static_cast<unsigned char>(*b))) ++b;
  while (e > b && is_ws(static_cast<unsigned char>(e[-1]))) --e;
}

inline bool all_digits(const char* b, const char* e) {
  for (const char* p = b; p < e; ++p)
    if (!is_digit(static_cast<unsigned char>(*p))) return false;
  return true;
}

// "-12": an integer, but a negative one (out of range, not "not an integer").
inline bool negative_integer(const char* b, const char* e) {
  return e - b > 1 && *b == '-' && all_digits(b + 1, e);
}

// Value of an all-digit token, saturated at 1000 (anything above 255 is an error anyway).
inline unsigned digits_value(const char* b, const char* e) {
  unsigned v = 0;
  for (const char* p = b; p < e; ++p) v = std::min(v * 10u + static_cast<unsigned>(*p - '0'), 1000u);
  return v;
}

// Splits [p, e) into fields. Stores the first `max_fields` spans, counts all of them.
bool split_fields(const char* p, const char* e, Field* fields, int max_fields, int& nfields,
                  std::string& err) {
  int j = 0;
  for (;;) {
    ++j;
    const char* q = p;
    while (q < e && (*q == ' ' || *q == '\t')) ++q;
    if (q < e && *q == '"') {
      const char* k = q + 1;
      for (;;) {
        k = static_cast<const char*>(std::memchr(k, '"', static_cast<size_t>(e - k)));
        if (!k) {
          err = "unterminated quoted field " + std::to_string(j);
          return false;
        }
        if (k + 1 < e && k[1] == '"') {
          k += 2;
          continue;
        }
        break;
      }
      if (j <= max_fields) fields[j - 1] = Field{q + 1, k};
      ++k;
      while (k < e && (*k == ' ' || *k == '\t')) ++k;
      if (k == e) {
        nfields = j;
        return true;
      }
      if (*k != ',') {
        err = "unexpected character after closing quote in field " + std::to_string(j);
        return false;
      }
      p = k + 1;
    } else {
      const char* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
      if (!c) {
        if (j <= max_fields) fields[j - 1] = Field{p, e};
        nfields = j;
        return true;
      }
      if (j <= max_fields) fields[j - 1] = Field{p, c};
      p = c + 1;
    }
  }
}

// Bitmasks of spaces and ASCII digits among 64 bytes at p (bit i = byte i).
inline void classify64(const char* p, uint64_t& spaces, uint64_t& digits) {
#ifdef FER_HAVE_SSE2
  const __m128i space = _mm_set1_epi8(' '), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
  uint64_t sp = 0, dg = 0;
  for (int k = 0; k < 4; ++k) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    __m128i s = _mm_cmpeq_epi8(v, space);
    __m128i t = _mm_sub_epi8(v, zero);
    __m128i d = _mm_cmpeq_epi8(_mm_min_epu8(t, nine), t);
    sp |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(s)) & 0xffffu) << (16 * k);
    dg |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(d)) & 0xffffu) << (16 * k);
  }
  spaces = sp;
  digits = dg;
#else
  uint64_t sp = 0, dg = 0;
  for (int i = 0; i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    sp |= static_cast<uint64_t>(c == ' ') << i;
    dg |= static_cast<uint64_t>(is_digit(c)) << i;
  }
  spaces = sp;
  digits = dg;
#endif
}

// Fast path for a canonical pixels field: tokens of 1-3 digits, values <= 255, separated by
// exactly one space, nothing before the first or after the last. Returns false (having
// possibly written garbage to out) for anything else; the caller then runs the slow path.
// `lo` is the start of the whole buffer: each token is read with a 4-byte load ending at its
// last digit, which must lie inside the buffer. Branch-free per token: problems are
// collected in `bad` and checked once per 64-byte block.
bool parse_pixels_fast(const char* lo, const char* b, const char* e, uint8_t* out, int64_t npix) {
  if (b - lo < 4 || e <= b) return false;
  // Digits of a token of length 1..3 ending just before s, read with one 4-byte load from
  // s-4 (inside the buffer because b - lo >= 4): byte 3 is the units digit.
  static const uint32_t kKeep[4] = {0u, 0xff000000u, 0xffff0000u, 0xffffff00u};
  int64_t count = 0;
  uint32_t bad = 0;  // bit 8 or above set: a token was empty, too long or above 255
  const char* start = b;
  auto token = [&](const char* s) {  // token [start, s)
    const size_t len = static_cast<size_t>(s - start);
    uint32_t w;
    std::memcpy(&w, s - 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    const uint32_t x = (w ^ 0x30303030u) & kKeep[len & 3];
    const uint32_t v = ((x >> 8) & 0xffu) * 100u + ((x >> 16) & 0xffu) * 10u + (x >> 24);
    bad |= v | (static_cast<uint32_t>(len - 1 > 2) << 8);
    out[count++] = static_cast<uint8_t>(v);
    start = s + 1;
  };
  for (const char* blk = b; blk < e; blk += 64) {
    uint64_t sp, dg;
    size_t avail = static_cast<size_t>(e - blk);
    if (avail >= 64) {
      classify64(blk, sp, dg);
    } else {
      char tmp[64];
      std::memcpy(tmp, blk, avail);
      std::memset(tmp + avail, '0', 64 - avail);  // padding counts as digits, never as spaces
      classify64(tmp, sp, dg);
      sp &= (uint64_t{1} << avail) - 1;
    }
    if (~(sp | dg)) return false;  // a byte that is neither a digit nor a space
    // At most 32 separators per block: count exactly only near the end of the row.
    if (count + 32 >= npix && count + popcount64(sp) >= npix) return false;  // too many tokens
    while (sp) {
      token(blk + ctz64(sp));
      sp &= sp - 1;
    }
    if (bad >> 8) return false;
  }
  token(e);
  return (bad >> 8) == 0 && count == npix;
}

#ifdef FER_HAVE_SSE2
// The same contract as parse_pixels_fast, vectorised: for every byte position i the SIMD pass
// computes tens_units[i] = d[i] + 10*d[i-1] and hundreds[i] = d[i-2] (each only when the
// bytes before are digits of the same token), so a token ending at i has the value
// tens_units[i] + 100*hundreds[i]; the scalar pass then only walks the separator bitmask.
// Structure checks (only digits and single spaces, no run of 4 digits, no blank at either
// end) are done on the 64-bit masks.
//
// The field may end before `limit`: parsing stops at the first byte that is neither a digit
// nor a space, and *field_end says where (limit if none). The caller decides whether that
// byte may end the field (',' for an unquoted field); this saves a separate comma search.
bool parse_pixels_fast_sse2(const char* lo, const char* b, const char* limit, uint8_t* out, int64_t npix,
                            const char** field_end) {
  if (b - lo < 4 || limit <= b) return false;
  size_t n = static_cast<size_t>(limit - b);
  const size_t blocks = (n + 63) / 64;
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < blocks * 128) scratch.resize(blocks * 128);
  uint8_t* tens_units = scratch.data();
  uint8_t* hundreds = scratch.data() + blocks * 64;

  const __m128i space = _mm_set1_epi8(' '), zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
  // prev_*: the previous block's masks, last byte at bit 63. "A space before the field" makes a
  // leading blank an empty token.
  uint64_t bad = 0, prev_sp = uint64_t{1} << 63, prev_dg = 0;
  uint32_t acc = 0;
  int64_t count = 0;
  char tmp[2 + 64];
  for (size_t k = 0; k < blocks; ++k) {
    const char* p = b + 64 * k;
    const size_t avail = std::min<size_t>(64, n - 64 * k);
    const char* src = p;  // reads src[-2 .. 63]
    if (avail < 64) {
      tmp[0] = p[-2];
      tmp[1] = p[-1];
      std::memcpy(tmp + 2, p, avail);
      std::memset(tmp + 2 + avail, ' ', 64 - avail);
      src = tmp + 2;
    }
    uint64_t sp = 0, dg = 0;
    for (int q = 0; q < 4; ++q) {
      const char* c = src + 16 * q;
      __m128i c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
      __m128i c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c - 1));
      __m128i c2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c - 2));
      __m128i d0 = _mm_sub_epi8(c0, zero), d1 = _mm_sub_epi8(c1, zero), d2 = _mm_sub_epi8(c2, zero);
      __m128i g0 = _mm_cmpeq_epi8(_mm_min_epu8(d0, nine), d0);
      __m128i g1 = _mm_cmpeq_epi8(_mm_min_epu8(d1, nine), d1);
      __m128i g2 = _mm_cmpeq_epi8(_mm_min_epu8(d2, nine), d2);
      __m128i t = _mm_and_si128(d1, g1);  // tens digit (0 when the byte before is not a digit)
      // 10*t per byte: t <= 9, so the 16-bit shifts never carry into the neighbouring byte.
      __m128i ten_t = _mm_add_epi8(_mm_slli_epi16(t, 3), _mm_slli_epi16(t, 1));
      __m128i tu = _mm_add_epi8(_mm_and_si128(d0, g0), ten_t);
      __m128i h = _mm_and_si128(d2, _mm_and_si128(g1, g2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tens_units + 64 * k + 16 * q), tu);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(hundreds + 64 * k + 16 * q), h);
      sp |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(c0, space))) & 0xffffu) << (16 * q);
      dg |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(g0)) & 0xffffu) << (16 * q);
    }
    uint64_t valid = avail == 64 ? ~uint64_t{0} : (uint64_t{1} << avail) - 1;
    const uint64_t other = ~(sp | dg) & valid;  // neither digit nor space: the field ends there
    bool last = k + 1 == blocks;
    if (other) {
      const int j = ctz64(other);
      valid = (uint64_t{1} << j) - 1;  // j < 64
      n = 64 * k + static_cast<size_t>(j);
      last = true;
    }
    sp &= valid;
    dg &= valid;
    bad |= sp & ((sp << 1) | (prev_sp >> 63));         // a space after a space: empty token
    bad |= dg & ((dg << 1) | (prev_dg >> 63)) & ((dg << 2) | (prev_dg >> 62)) &
           ((dg << 3) | (prev_dg >> 61));               // 4 digits in a row
    if (bad || n == 0) return false;
    prev_sp = sp << (63 - (avail - 1));  // keep the last valid bit at bit 63 (unused after the last block)
    prev_dg = dg << (63 - (avail - 1));
    if (count + 32 >= npix && count + popcount64(sp) >= npix) return false;  // too many tokens
    const uint8_t* tu = tens_units + 64 * k - 1;  // token ending just before the space at bit i
    const uint8_t* hu = hundreds + 64 * k - 1;
    while (sp) {
      const int i = ctz64(sp);
      sp &= sp - 1;
      const uint32_t v = tu[i] + 100u * hu[i];
      acc |= v;
      out[count++] = static_cast<uint8_t>(v);
    }
    if (last) break;
  }
  if (!is_digit(static_cast<unsigned char>(b[n - 1]))) return false;  // trailing blank
  const uint32_t v = tens_units[n - 1] + 100u * hundreds[n - 1];
  acc |= v;
  out[count++] = static_cast<uint8_t>(v);
  *field_end = b + n;
  return (acc >> 8) == 0 && count == npix;
}
#endif

// Byte-at-a-time pixels parser: accepts any whitespace between tokens and words the error.
bool parse_pixels_slow(const char* b, const char* e, uint8_t* out, int64_t npix, std::string& err) {
  const char* p = b;
  int64_t count = 0;
  for (;;) {
    while (p < e && is_ws(static_cast<unsigned char>(*p))) ++p;
    if (p >= e) break;
    const char* t = p;
    unsigned v = 0;
    bool numeric = true;
    while (p < e && !is_ws(static_cast<unsigned char>(*p))) {
      unsigned char c = static_cast<unsigned char>(*p);
      if (is_digit(c))
        v = std::min(v * 10u + (c - '0'), 1000u);
      else
        numeric = false;
      ++p;
    }
    ++count;
    if (!numeric) {
      if (negative_integer(t, p))
        err = "pixels value " + std::to_string(count) + " is -" + display_digits(t + 1, p) + ", outside 0..255";
      else
        err = "pixels value " + std::to_string(count) + " is not an integer: " + display_quoted(t, p);
      return false;
    }
    if (v > 255) {
      err = "pixels value " + std::to_string(count) + " is " + display_digits(t, p) + ", outside 0..255";
      return false;
    }
    if (count <= npix) out[count - 1] = static_cast<uint8_t>(v);
  }
  if (count == 0) {
    err = "pixels is empty";
    return false;
  }
  if (count != npix) {
    err = "pixels has " + std::to_string(count) + " values, expected " + std::to_string(npix);
    return false;
  }
  return true;
}

bool parse_label(Field f, int num_classes, int64_t& label, std::string& err) {
  const char *b = f.b, *e = f.e;
  trim(b, e);
  if (b == e) {
    err = "emotion is empty";
    return false;
  }
  if (negative_integer(b, e)) {
    err = "emotion -" + display_digits(b + 1, e) + " is not a class label 0.." + std::to_string(num_classes - 1);
    return false;
  }
  if (!all_digits(b, e)) {
    err = "emotion " + display_quoted(b, e) + " is not an integer";
    return false;
  }
  unsigned v = digits_value(b, e);
  if (v >= static_cast<unsigned>(num_classes)) {
    err = "emotion " + display_digits(b, e) + " is not a class label 0.." + std::to_string(num_classes - 1);
    return false;
  }
  label = v;
  return true;
}

bool parse_usage(Field f, const std::vector<std::string>& usages, int8_t& code, std::string& err) {
  const char *b = f.b, *e = f.e;
  trim(b, e);
  if (b == e) {
    err = "Usage is empty";
    return false;
  }
  size_t n = static_cast<size_t>(e - b);
  for (size_t i = 0; i < usages.size(); ++i) {
    if (usages[i].size() == n && std::memcmp(usages[i].data(), b, n) == 0) {
      code = static_cast<int8_t>(i);
      return true;
    }
  }
  std::string names;
  for (size_t i = 0; i < usages.size(); ++i) names += (i ? ", " : "") + usages[i];
  err = "Usage " + display_quoted(b, e) + " is not one of " + names;
  return false;
}

#ifdef FER_HAVE_SSE2
// One pass over a row in the common shape (no quotes, no blanks around the short fields, the
// pixels canonical): the pixels field's end is found by the SIMD parser itself instead of a
// comma search. Returns false for anything else, and the caller runs the general path, which
// gives the same values and words the errors.
bool parse_row_fast(const char* lo, const Line& ln, const CsvLayout& L, int64_t row, ParseOutput& out) {
  const char* p = ln.b;
  const char* const e = ln.e;
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  std::string ignored;
  for (int c = 0; c < L.ncols; ++c) {
    const bool last_col = c + 1 == L.ncols;
    if (p >= e && !(last_col && p == e && c != L.pixels_col)) return false;
    if (p < e && (*p == '"' || *p == ' ' || *p == '\t')) return false;
    const char* end;
    if (c == L.pixels_col) {
      if (!parse_pixels_fast_sse2(lo, p, e, out.images.get() + row * npix, npix, &end)) return false;
      if (end < e && *end != ',') return false;
    } else {
      end = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
      if (!end) end = e;
      const Field f{p, end};
      if (c == L.label_col) {
        if (!parse_label(f, L.num_classes, out.labels[row], ignored)) return false;
      } else if (c == L.usage_col) {
        if (!parse_usage(f, L.usages, out.usage[row], ignored)) return false;
      }
    }
    if (last_col) {
      if (end != e) return false;  // more fields than the header
    } else {
      if (end == e) return false;  // fewer fields than the header
      p = end + 1;
    }
  }
  if (L.label_col < 0) out.labels[row] = -1;
  if (L.usage_col < 0) out.usage[row] = -1;
  return true;
}
#endif

bool parse_row(const char* lo, const Line& ln, const CsvLayout& L, int64_t row, ParseOutput& out,
               std::string& err) {
#ifdef FER_HAVE_SSE2
  if (g_pixels_path.load(std::memory_order_relaxed) == PixelsPath::kSimd && parse_row_fast(lo, ln, L, row, out))
    return true;
#endif
  Field fields[kMaxCols];
  int nf = 0;
  if (!split_fields(ln.b, ln.e, fields, L.ncols, nf, err)) return false;
  if (nf != L.ncols) {
    err = "has " + std::to_string(nf) + " fields, expected " + std::to_string(L.ncols);
    return false;
  }
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  for (int c = 0; c < L.ncols; ++c) {
    if (c == L.pixels_col) {
      uint8_t* dst = out.images.get() + row * npix;
      bool fast = false;
      switch (g_pixels_path.load(std::memory_order_relaxed)) {
        case PixelsPath::kSimd:
#ifdef FER_HAVE_SSE2
        {
          const char* end = nullptr;
          fast = parse_pixels_fast_sse2(lo, fields[c].b, fields[c].e, dst, npix, &end) && end == fields[c].e;
          break;
        }
#else
          [[fallthrough]];
#endif
        case PixelsPath::kScalar:
          fast = parse_pixels_fast(lo, fields[c].b, fields[c].e, dst, npix);
          break;
        case PixelsPath::kSlow:
          break;
      }
      if (!fast &&
          !parse_pixels_slow(fields[c].b, fields[c].e, dst, npix, err))
        return false;
    } else if (c == L.label_col) {
      if (!parse_label(fields[c], L.num_classes, out.labels[row], err)) return false;
    } else if (c == L.usage_col) {
      if (!parse_usage(fields[c], L.usages, out.usage[row], err)) return false;
    }
  }
  if (L.label_col < 0) out.labels[row] = -1;
  if (L.usage_col < 0) out.usage[row] = -1;
  return true;
}

struct Chunk {
  std::vector<Line> lines;  // lineno relative to the chunk's first line
  int64_t total_lines = 0;  // blank ones included
};

// Collects the lines that start in [cb, ce) (a line starts at data[0] or right after \n).
void scan_lines(const char* data, const char* end, const char* cb, const char* ce, Chunk& ch) {
  const char* p = cb;
  if (cb != data) {
    const char* nl = static_cast<const char*>(std::memchr(cb - 1, '\n', static_cast<size_t>(end - (cb - 1))));
    if (!nl) return;
    p = nl + 1;
  }
  while (p < ce) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    if (le > p && le[-1] == '\r') --le;
    const char* q = p;
    while (q < le && is_ws(static_cast<unsigned char>(*q))) ++q;
    if (q < le) ch.lines.push_back(Line{p, le, ch.total_lines});
    ++ch.total_lines;
    if (!nl) break;
    p = nl + 1;
  }
}

}  // namespace

void FreeDeleter::operator()(void* p) const noexcept { std::free(p); }

void set_pixels_path(PixelsPath path) { g_pixels_path.store(path); }

bool simd_available() {
#ifdef FER_HAVE_SSE2
  return true;
#else
  return false;
#endif
}

void* alloc_buffer(size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(__linux__)
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= 4 * kHuge) {
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, (bytes + kHuge - 1) / kHuge * kHuge) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
    return p;
  }
#endif
  void* p = std::malloc(bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

bool parse_csv(const char* data, size_t size, int64_t first_line, const CsvLayout& L, int threads,
               ParseOutput& out, ParseError& err) {
  err = ParseError{};
  if (L.ncols < 1 || L.ncols > kMaxCols || L.pixels_col < 0 || L.pixels_col >= L.ncols ||
      L.label_col >= L.ncols || L.usage_col >= L.ncols || L.side < 1 || L.side > 4096 ||
      L.num_classes < 1 || L.usages.size() > 127) {
    err.line = -1;
    err.message = "invalid CSV layout";
    return false;
  }
  const char* end = data + size;

  // Pass 1: line boundaries, in byte-range chunks.
  const int t1 = pick_threads(threads, static_cast<int64_t>(size), int64_t{8} << 20);
  std::vector<Chunk> chunks(t1);
  parallel_for(t1, t1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const char* cb = data + size * static_cast<size_t>(i) / static_cast<size_t>(t1);
      const char* ce = data + size * static_cast<size_t>(i + 1) / static_cast<size_t>(t1);
      scan_lines(data, end, cb, ce, chunks[i]);
    }
  });
  std::vector<Line> lines;
  {
    size_t n = 0;
    for (auto& c : chunks) n += c.lines.size();
    lines.reserve(n);
    int64_t offset = first_line;
    for (auto& c : chunks) {
      for (auto& ln : c.lines) lines.push_back(Line{ln.b, ln.e, ln.lineno + offset});
      offset += c.total_lines;
      std::vector<Line>().swap(c.lines);
    }
  }

  // Pass 2: rows, in contiguous row ranges.
  const int64_t rows = static_cast<int64_t>(lines.size());
  const int64_t npix = static_cast<int64_t>(L.side) * L.side;
  out.rows = rows;
  out.images.reset(static_cast<uint8_t*>(alloc_buffer(static_cast<size_t>(rows * npix))));
  out.labels.reset(static_cast<int64_t*>(alloc_buffer(static_cast<size_t>(rows) * sizeof(int64_t))));
  out.usage.reset(static_cast<int8_t*>(alloc_buffer(static_cast<size_t>(rows))));

  const int t2 = pick_threads(threads, rows, 256);
  struct WorkerError {
    int64_t row = -1;
    std::string message;
  };
  std::vector<WorkerError> errors(t2);
  std::atomic<int64_t> first_bad{rows};
  parallel_for(rows, t2, [&](int64_t b, int64_t e, int w) {
    std::string msg;
    for (int64_t r = b; r < e; ++r) {
      if (r > first_bad.load(std::memory_order_relaxed)) return;  // an earlier row already failed
      if (!parse_row(data, lines[r], L, r, out, msg)) {
        errors[w].row = r;
        errors[w].message = std::move(msg);
        int64_t cur = first_bad.load();
        while (r < cur && !first_bad.compare_exchange_weak(cur, r)) {
        }
        return;
      }
    }
  });
  const WorkerError* worst = nullptr;
  for (auto& we : errors)
    if (we.row >= 0 && (!worst || we.row < worst->row)) worst = &we;
  if (worst) {
    err.line = lines[worst->row].lineno;
    err.message = worst->message;
    return false;
  }
  return true;
}

}  // namespace fer
